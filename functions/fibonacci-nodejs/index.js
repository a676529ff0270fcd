const MAX_N = 40; // naive recursion is exponential: each step up in n costs ~1.6x the time

function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function handler(event, context) {
  const n = event.n ?? 25;
  if (!Number.isInteger(n) || n < 0 || n > MAX_N) {
    throw new RangeError(`n must be an integer from 0 to ${MAX_N}, got ${JSON.stringify(n)}`);
  }
  return { n, result: fib(n) };
}
