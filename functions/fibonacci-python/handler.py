MAX_N = 40  # naive recursion is exponential: fib(40) already takes 10-20 s in CPython


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def handler(event, context):
    n = event.get("n", 25)
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_N:
        raise ValueError(f"n must be an integer from 0 to {MAX_N}, got {n!r}")
    return {"n": n, "result": fib(n)}
