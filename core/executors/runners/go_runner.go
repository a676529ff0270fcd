// cloudfn Go worker: compiled together with the user's main.go and a generated
// cloudfn_handler.go (which names the handler). Started as: handler REQ_FD RESP_FD.
// Frames both ways: 4-byte big-endian length, then UTF-8 JSON. The first request is "init";
// then one "invoke" at a time. What the user prints goes to fds 1/2, a separate pipe; after each
// invocation a marker carrying the request's nonce closes its logs, unless that pipe is already
// empty (the reply then says logs_closed: false).
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

type cfnFrame struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Function string `json:"function"`
}

// cfnError records where an error made by the user's code was created (fmt.Errorf and
// errors.New calls in main.go are routed here), so a returned error has a stack too.
type cfnError struct {
	err      error
	pcs      []uintptr
	duringGo bool
}

var cfnInvoking bool

func (e *cfnError) Error() string { return e.err.Error() }
func (e *cfnError) Unwrap() error { return e.err }

func cfn_Errorf(format string, a ...interface{}) error {
	return &cfnError{fmt.Errorf(format, a...), cfnCallers(2), cfnInvoking}
}

func cfn_errNew(text string) error {
	return &cfnError{errors.New(text), cfnCallers(2), cfnInvoking}
}

func cfnCallers(skip int) []uintptr {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(skip+1, pcs)
	return pcs[:n]
}

func cfnUserFrames(pcs []uintptr) []cfnFrame {
	out := []cfnFrame{}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.File, "/"+cloudfnUserFile) || f.File == cloudfnUserFile {
			name := f.Function
			if i := strings.LastIndex(name, "."); i >= 0 && strings.HasPrefix(name, "main.") {
				name = name[i+1:]
			}
			line := f.Line - cloudfnLineOffset
			if line > 0 {
				out = append(out, cfnFrame{File: cloudfnUserFile, Line: line, Function: name})
			}
		}
		if !more {
			break
		}
	}
	return out
}

var cfnIn *os.File
var cfnOut *os.File

// Package variables are set before any init() and before main.go's own (files initialise in
// name order, cloudfn_runner.go first): no user code runs with an inherited fd.
var cfnInheritedClosed = cfnCloseInherited()

// cfnCloseInherited closes the fds this process inherited beyond stdio and the protocol's: a
// second line behind the spawner's close_fds (uvloop's spawning ignored it, and each worker
// inherited the API's listening socket). Raw syscalls: os.Open would start the runtime's poller
// (an epoll fd and a pipe). Should the runtime have fds of its own by now, they are kept by the
// rule the Node.js runner uses: anon_inode fds, and pipes with both ends here, stay.
func cfnCloseInherited() bool {
	keep := map[int]bool{0: true, 1: true, 2: true}
	for _, a := range os.Args[1:3] {
		if fd, err := strconv.Atoi(a); err == nil {
			keep[fd] = true
		}
	}
	dir, err := syscall.Open("/proc/self/fd", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := syscall.ReadDirent(dir, buf)
		if err != nil || n <= 0 {
			break
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
	syscall.Close(dir)
	links := map[int]string{}
	ends := map[string]int{}
	target := make([]byte, 256)
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || keep[fd] || fd == dir {
			continue
		}
		n, err := syscall.Readlink("/proc/self/fd/"+name, target)
		if err != nil {
			continue
		}
		links[fd] = string(target[:n])
		ends[links[fd]]++
	}
	for fd, link := range links {
		if strings.HasPrefix(link, "anon_inode:") || (strings.HasPrefix(link, "pipe:") && ends[link] > 1) {
			continue
		}
		syscall.Close(fd)
	}
	return true
}

func cfnReadFrame() []byte {
	var head [4]byte
	if _, err := io.ReadFull(cfnIn, head[:]); err != nil {
		os.Exit(0) // the platform closed the pipe
	}
	body := make([]byte, binary.BigEndian.Uint32(head[:]))
	if _, err := io.ReadFull(cfnIn, body); err != nil {
		os.Exit(0)
	}
	return body
}

func cfnWrite(data []byte) {
	buf := make([]byte, 4+len(data))
	binary.BigEndian.PutUint32(buf, uint32(len(data)))
	copy(buf[4:], data)
	cfnOut.Write(buf)
}

// cfnCloseLogs ends the request's logs; true if a marker was written. None is written when the
// log pipe is empty: the platform has then read everything printed, and taken it in (it does both
// in one callback), before the reply is even written. That saves a write and a wake-up of the
// platform per invocation.
func cfnCloseLogs(nonce string) bool {
	var unread int32
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, 1, syscall.TIOCINQ, uintptr(unsafe.Pointer(&unread)))
	if e == 0 && unread == 0 {
		return false
	}
	_, err := syscall.Write(1, []byte("\x1e"+nonce+"\x1e"))
	return err == nil
}

type cfnRequest struct {
	Type       string          `json:"type"`
	Event      json.RawMessage `json:"event"`
	Context    json.RawMessage `json:"context"`
	Nonce      string          `json:"nonce"`
	MaxResult  int             `json:"max_result_bytes"`
	Timeout    float64         `json:"timeout"`
	DeadlineMs float64         `json:"deadline_ms"`
}

func cfnStats(m map[string]interface{}, wantRss bool) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		m["cpu"] = float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
		m["maxrss_kb"] = 0
		if !wantRss {
			return
		}
		m["maxrss_kb"] = ru.Maxrss
		// VmHWM starts afresh at exec (ru_maxrss keeps the forking parent's peak).
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "VmHWM:") {
					if f := strings.Fields(line); len(f) >= 2 {
						if v, err := strconv.Atoi(f[1]); err == nil {
							m["maxrss_kb"] = v
						}
					}
				}
			}
		}
	}
}

func cfnFail(kind, msg string, stack []cfnFrame) map[string]interface{} {
	if stack == nil {
		stack = []cfnFrame{}
	}
	return map[string]interface{}{"ok": false, "error_type": kind, "error": msg, "stack": stack}
}

var cfnErrorType = reflect.TypeOf((*error)(nil)).Elem()
var cfnContextType = reflect.TypeOf((*context.Context)(nil)).Elem()

// cfnShape is what the handler's signature asks for, worked out once at load so an invocation
// only fills in the parameters. Accepted: every aws-lambda-go form (an optional leading
// context.Context, then at most one event; no result, error, TOut or (TOut, error)) and the
// seed's (event, context map) forms, whose second parameter receives the platform's context.
type cfnShape struct {
	takesCtx bool
	event    int // the event parameter's index, -1 when there is none
	ctxMap   int // the seed's context-map parameter's index, -1 when there is none
	value    int // the result's index, -1 when there is none
	err      int // the error's index, -1 when there is none
}

func cfnAnalyse(ht reflect.Type) (cfnShape, string) {
	s := cfnShape{event: -1, ctxMap: -1, value: -1, err: -1}
	n := ht.NumIn()
	if ht.IsVariadic() {
		return s, "the handler is variadic; it takes (event) or (ctx context.Context, event)"
	}
	if n > 0 && ht.In(0) == cfnContextType {
		s.takesCtx = true
		if n > 2 {
			return s, "the handler takes more than two parameters (ctx context.Context, event)"
		}
		if n == 2 {
			s.event = 1
		}
	} else {
		if n > 2 {
			return s, "the handler takes more than two parameters (event, context)"
		}
		if n >= 1 {
			s.event = 0
		}
		if n == 2 {
			if ht.In(1) == cfnContextType {
				return s, "context.Context must be the handler's first parameter (ctx context.Context, event)"
			}
			s.ctxMap = 1
		}
	}
	switch ht.NumOut() {
	case 0:
	case 1:
		if ht.Out(0) == cfnErrorType {
			s.err = 0
		} else {
			s.value = 0
		}
	case 2:
		out := ht.Out(1)
		if out != cfnErrorType && !(out.Kind() == reflect.Interface && out.Implements(cfnErrorType)) {
			return s, fmt.Sprintf("the handler's second result is %s; it must be error (result, error)", out)
		}
		s.value, s.err = 0, 1
	default:
		return s, "the handler returns more than two values (result, error)"
	}
	return s, ""
}

func cfnDecode(raw json.RawMessage, t reflect.Type, what string) (reflect.Value, map[string]interface{}) {
	ptr := reflect.New(t)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, ptr.Interface()); err != nil {
			return ptr, cfnFail("InvalidEvent", fmt.Sprintf("the %s does not fit the handler's parameter of type %s: %v",
				what, t, err), nil)
		}
	}
	return ptr.Elem(), nil
}

func cfnInvoke(hv reflect.Value, s *cfnShape, req *cfnRequest) (reply map[string]interface{}) {
	ht := hv.Type()
	args := make([]reflect.Value, ht.NumIn())
	if s.takesCtx {
		// As in Lambda: the context's deadline is the invocation's timeout, and it is cancelled
		// then (the platform stops the worker at the same moment).
		deadline := time.Unix(0, int64(req.DeadlineMs*1e6))
		if req.DeadlineMs <= 0 {
			deadline = time.Now().Add(time.Duration(req.Timeout * float64(time.Second)))
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		args[0] = reflect.ValueOf(ctx)
	}
	var fail map[string]interface{}
	if s.event >= 0 {
		if args[s.event], fail = cfnDecode(req.Event, ht.In(s.event), "event"); fail != nil {
			return fail
		}
	}
	if s.ctxMap >= 0 {
		if args[s.ctxMap], fail = cfnDecode(req.Context, ht.In(s.ctxMap), "context"); fail != nil {
			return fail
		}
	}
	defer func() {
		cfnInvoking = false
		if r := recover(); r != nil {
			pcs := cfnCallers(2)
			msg := fmt.Sprint(r)
			if e, ok := r.(error); ok {
				msg = e.Error()
			}
			reply = cfnFail("HandlerError", "panic: "+msg, cfnUserFrames(pcs))
		}
	}()
	cfnInvoking = true
	outs := hv.Call(args)
	cfnInvoking = false
	if s.err >= 0 {
		if e := outs[s.err]; !e.IsNil() {
			err := e.Interface().(error)
			return cfnFail("HandlerError", err.Error(), cfnErrorStack(err))
		}
	}
	var result interface{}
	if s.value >= 0 {
		result = outs[s.value].Interface()
	}
	body, err := json.Marshal(result)
	if err != nil {
		return cfnFail("InvalidResult", "the result is not JSON-serialisable: "+err.Error(), nil)
	}
	max := req.MaxResult
	if max <= 0 {
		max = 6 * 1024 * 1024
	}
	if len(body) > max {
		return cfnFail("OutputTooLarge", fmt.Sprintf("the result is %d bytes; the limit is %d", len(body), max), nil)
	}
	return map[string]interface{}{"ok": true, "result": json.RawMessage(body)}
}

// The stack of the innermost error the user's code created during this invocation.
func cfnErrorStack(err error) []cfnFrame {
	var best *cfnError
	for e := err; e != nil; e = errors.Unwrap(e) {
		if ce, ok := e.(*cfnError); ok && ce.duringGo {
			best = ce
		}
	}
	if best == nil {
		return []cfnFrame{}
	}
	return cfnUserFrames(best.pcs)
}

func main() {
	inFd, _ := strconv.Atoi(os.Args[1])
	outFd, _ := strconv.Atoi(os.Args[2])
	cfnIn = os.NewFile(uintptr(inFd), "requests")
	cfnOut = os.NewFile(uintptr(outFd), "responses")
	start := time.Now()
	var init struct {
		Nonce string `json:"nonce"`
		Rss   *bool  `json:"rss"` // false when the platform reads the peak from the cgroup
	}
	json.Unmarshal(cfnReadFrame(), &init)
	hv := reflect.ValueOf(cloudfnHandler)
	var ready map[string]interface{}
	var shape cfnShape
	if hv.Kind() != reflect.Func {
		ready = cfnFail("CompileError", "the handler is not a function", nil)
	} else if s, problem := cfnAnalyse(hv.Type()); problem != "" {
		ready = cfnFail("CompileError", problem, nil)
	} else {
		shape = s
		ready = map[string]interface{}{"ok": true, "type": "ready"}
	}
	ready["load_ms"] = float64(time.Since(start).Microseconds()) / 1000
	ready["logs_closed"] = cfnCloseLogs(init.Nonce)
	ready["nonce"] = init.Nonce // the platform takes no reply without its request's nonce
	b, _ := json.Marshal(ready)
	cfnWrite(b)
	if ready["ok"] != true {
		return
	}
	for {
		var req cfnRequest
		if err := json.Unmarshal(cfnReadFrame(), &req); err != nil {
			os.Exit(71)
		}
		reply := cfnInvoke(hv, &shape, &req)
		cfnStats(reply, init.Rss == nil || *init.Rss)
		reply["logs_closed"] = cfnCloseLogs(req.Nonce)
		reply["nonce"] = req.Nonce
		b, err := json.Marshal(reply)
		if err != nil {
			fail := cfnFail("InvalidResult", err.Error(), nil)
			fail["nonce"] = req.Nonce
			b, _ = json.Marshal(fail)
		}
		cfnWrite(b)
	}
}
