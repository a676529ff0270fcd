import "fmt"

const maxN = 40 // naive recursion is exponential: each step up in n costs ~1.6x the time

func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

func handler(event interface{}, context map[string]string) (interface{}, error) {
	n := 25.0
	if m, ok := event.(map[string]interface{}); ok && m["n"] != nil {
		v, ok := m["n"].(float64)
		if !ok || v != float64(int(v)) || v < 0 || v > maxN {
			return nil, fmt.Errorf("n must be an integer from 0 to %d, got %v", maxN, m["n"])
		}
		n = v
	}
	return map[string]interface{}{"n": int(n), "result": fib(int(n))}, nil
}
