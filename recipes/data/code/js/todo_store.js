let nextId = 1;

export function createStore() {
  const todos = [];
  return {
    add(title) {
      const todo = { id: nextId++, title, done: false };
      todos.push(todo);
      return todo;
    },
    toggle(id) {
      const todo = todos.find((t) => t.id === id);
      if (todo) todo.done = !todo.done;
      return todo;
    },
    remaining() {
      return todos.filter((t) => !t.done);
    },
    all() {
      return [...todos];
    },
  };
}
