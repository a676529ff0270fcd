import (
	"errors"
	"fmt"
	"math"
)

func calculate(event interface{}, context map[string]string) (interface{}, error) {
	m, _ := event.(map[string]interface{}) // JSON numbers arrive as float64
	op, _ := m["op"].(string)
	a, ok := m["a"].(float64)
	if !ok {
		return nil, errors.New("event.a must be a number")
	}
	b, ok := m["b"].(float64)
	if !ok && op != "sqrt" {
		return nil, fmt.Errorf("event.b must be a number for op %q", op)
	}

	var r float64
	switch op {
	case "add":
		r = a + b
	case "sub":
		r = a - b
	case "mul":
		r = a * b
	case "div":
		if b == 0 {
			return nil, errors.New("division by zero")
		}
		r = a / b
	case "pow":
		r = math.Pow(a, b)
	case "sqrt":
		if a < 0 {
			return nil, fmt.Errorf("cannot take the square root of %v", a)
		}
		r = math.Sqrt(a)
	default:
		return nil, fmt.Errorf("unknown op %q (want add, sub, mul, div, pow or sqrt)", op)
	}
	// encoding/json cannot encode Inf or NaN, so report them instead of failing to marshal.
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return nil, fmt.Errorf("%s(%v, %v) is not a finite number", op, a, b)
	}
	return map[string]interface{}{"op": op, "a": a, "b": b, "result": r}, nil
}
