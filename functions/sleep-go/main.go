import (
	"errors"
	"time"
)

func handler(event interface{}, context map[string]string) (interface{}, error) {
	seconds := 1.0
	if m, ok := event.(map[string]interface{}); ok {
		if s, ok := m["seconds"].(float64); ok {
			seconds = s
		}
	}
	if seconds < 0 {
		return nil, errors.New("seconds must not be negative")
	}
	start := time.Now()
	time.Sleep(time.Duration(seconds * float64(time.Second)))
	return map[string]interface{}{
		"requested": seconds,
		"slept":     time.Since(start).Round(time.Millisecond).Seconds(),
	}, nil
}
