from collections import deque


def bfs(graph, start):
    """Distances in edges from start to every reachable node."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, ()):
            if nxt not in dist:
                dist[nxt] = dist[node] + 1
                queue.append(nxt)
    return dist


def dfs(graph, start, seen=None):
    seen = set() if seen is None else seen
    seen.add(start)
    for nxt in graph.get(start, ()):
        if nxt not in seen:
            dfs(graph, nxt, seen)
    return seen


def topological_order(graph):
    indegree = {n: 0 for n in graph}
    for targets in graph.values():
        for t in targets:
            indegree[t] = indegree.get(t, 0) + 1
    ready = deque(n for n, d in indegree.items() if d == 0)
    order = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for t in graph.get(n, ()):
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    if len(order) != len(indegree):
        raise ValueError("the graph has a cycle")
    return order
