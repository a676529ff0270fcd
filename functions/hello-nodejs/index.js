function handler(event, context) {
  const greeting = process.env.GREETING || 'Hello';
  const name = (event && event.name) || 'World';
  return { message: `${greeting}, ${name}!`, event };
}
