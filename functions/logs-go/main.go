import (
	"fmt"
	"os"
)

func handler(event interface{}, context map[string]string) interface{} {
	m, _ := event.(map[string]interface{})
	user, _ := m["user"].(string)
	if user == "" {
		user = "anonymous"
	}
	steps := 3
	if s, ok := m["steps"].(float64); ok {
		steps = int(s)
	}
	service := os.Getenv("SERVICE")
	debug := os.Getenv("DEBUG") == "true"

	written := map[string]int{"stdout": 0, "stderr": 0}
	log := func(level, format string, args ...interface{}) {
		if level == "DEBUG" && !debug {
			return
		}
		out, stream := os.Stdout, "stdout"
		if level == "WARN" || level == "ERROR" {
			out, stream = os.Stderr, "stderr"
		}
		fmt.Fprintf(out, "%s [%s] %s\n", level, service, fmt.Sprintf(format, args...))
		written[stream]++
	}

	log("INFO", "request %s started for user %s", context["request_id"], user)
	for step := 1; step <= steps; step++ {
		log("DEBUG", "step %d/%d done", step, steps)
	}
	log("WARN", "disk usage at 85%% (simulated)")
	log("ERROR", "retrying upstream call after a simulated failure")
	log("INFO", "finished")

	return map[string]interface{}{
		"user":   user,
		"lines":  written["stdout"] + written["stderr"],
		"stdout": written["stdout"],
		"stderr": written["stderr"],
	}
}
