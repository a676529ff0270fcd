async function handler(event, context) {
  const seconds = Number(event.seconds ?? 1);
  if (!(seconds >= 0)) throw new RangeError(`seconds must be a non-negative number, got ${event.seconds}`);
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return { requested: seconds, slept: (Date.now() - start) / 1000 };
}
