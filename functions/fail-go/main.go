import (
	"errors"
	"fmt"
)

var errOutOfStock = errors.New("out of stock")

func checkStock(orderID int, crash bool) error {
	if crash {
		panic(fmt.Sprintf("order %d: inventory table corrupted (a demonstration panic; fail-go panics when event.panic is true)", orderID))
	}
	return fmt.Errorf("order %d: %w (a demonstration error; fail-go always fails)", orderID, errOutOfStock)
}

func processOrder(orderID int, crash bool) (interface{}, error) {
	if err := checkStock(orderID, crash); err != nil {
		return nil, fmt.Errorf("process order: %w", err)
	}
	return map[string]interface{}{"order_id": orderID, "status": "shipped"}, nil
}

func handler(event interface{}, context map[string]string) (interface{}, error) {
	m, _ := event.(map[string]interface{})
	id, ok := m["order_id"].(float64)
	if !ok {
		id = 42
	}
	crash, _ := m["panic"].(bool)
	return processOrder(int(id), crash)
}
