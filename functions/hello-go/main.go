func handler(event interface{}, context map[string]string) interface{} {
	name := "World"
	if m, ok := event.(map[string]interface{}); ok {
		if s, ok := m["name"].(string); ok && s != "" {
			name = s
		}
	}
	return map[string]interface{}{
		"message": "Hello, " + name + "!",
		"event":   event,
	}
}
