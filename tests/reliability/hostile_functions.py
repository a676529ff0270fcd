"""The hostile corpus's function bodies: one program per runtime, the case chosen by
`event["case"]` (one Go build for every case). Used by test_hostile.py."""

PYTHON = r"""
import asyncio, os, signal, socket, sys, threading, time


def _read(path):
    try:
        with open(path, "rb") as f:
            return "read:" + f.read(65536).decode("utf-8", "replace")
    except Exception as exc:
        return "denied:" + type(exc).__name__


def _write(path):
    try:
        with open(path, "a") as f:
            f.write("pwned")
        return "wrote"
    except Exception as exc:
        return "denied:" + type(exc).__name__


def handler(event, context):
    case = event["case"]
    marker = event["marker"]
    if case == "memory_bomb":
        hog = []
        while True:
            hog.append(b"x" * (8 << 20))
    if case == "fork_bomb":
        while True:
            os.fork()  # every child forks too; BlockingIOError at the process limit
    if case == "thread_bomb":
        while True:
            threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    if case == "cpu_spin":
        while True:
            pass
    if case == "sleep_forever":
        while True:
            time.sleep(3600)
    if case == "never_settles":
        async def never():
            await asyncio.Event().wait()
        return never()
    if case == "stdout_flood":
        chunk = "x" * (1 << 20)
        for _ in range(4096):  # 4 GiB unless something stops it
            sys.stdout.write(chunk)
        return "flood finished"
    if case == "fill_tmp":
        chunk = b"x" * (1 << 20)
        i = 0
        while True:
            with open(f"/tmp/fill-{i}", "wb") as f:
                for _ in range(16):
                    f.write(chunk)
            i += 1
    if case == "huge_result":
        return "x" * (8 << 20)
    if case == "deep_recursion":
        def down(n):
            return down(n + 1) + 1
        return down(0)
    if case == "snoop":
        out = {"env": dict(os.environ)}
        for p in event["paths"]:
            out[p] = _read(p)
            try:
                out[p + " (list)"] = sorted(os.listdir(p))
            except Exception as exc:
                out[p + " (list)"] = "denied:" + type(exc).__name__
        for p in event["write"]:
            out["write " + p] = _write(p)
        print(out)
        return out
    if case == "connect_host":
        s = socket.socket()
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", event["port"]))
            return "connected:" + s.recv(100).decode()
        except OSError as exc:
            return "refused:" + type(exc).__name__
    if case == "dns":
        out = {}
        for name in ("example.com", "localhost", "cloudfn-" + marker + ".test"):
            try:
                out[name] = "resolved:" + str(socket.getaddrinfo(name, 80)[0][4])
            except OSError as exc:
                out[name] = "failed:" + type(exc).__name__
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.sendto(b"leak-" + marker.encode(), ("127.0.0.1", event["udp_port"]))
            out["udp"] = "sent"
        except OSError as exc:
            out["udp"] = "failed:" + type(exc).__name__
        return out
    if case == "escapee":
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sh", ["sh", "-c", f"trap '' TERM HUP INT; sleep 3600; echo {marker} > /tmp/{marker}"])
            os._exit(0)
        os.wait()
        return "escaped"
    if case == "kill_parent":
        out = {}
        for name, pid in (("parent", os.getppid()), ("everyone", -1)):
            try:
                os.kill(pid, signal.SIGKILL)
                out[name] = "sent"
            except OSError as exc:
                out[name] = type(exc).__name__
        return out
    if case == "close_fds":
        os.closerange(0, 1024)  # the protocol pipes (sys.argv[1:3]) and stdout/stderr too
        return "closed"
    if case == "ignore_sigterm":
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        while True:
            time.sleep(3600)
    if case == "unserialisable":
        return {"a": object(), "s": {1, 2}}
    if case == "hello":
        return "hello"
    raise ValueError("unknown case " + case)
"""

NODEJS = r"""
const fs = require('fs');
const cp = require('child_process');
const net = require('net');
const dns = require('dns');
const dgram = require('dgram');
const { Worker } = require('worker_threads');

function tryRead(p) {
  try { return 'read:' + fs.readFileSync(p).subarray(0, 65536).toString(); } catch (e) { return 'denied:' + e.code; }
}
function tryWrite(p) {
  try { fs.appendFileSync(p, 'pwned'); return 'wrote'; } catch (e) { return 'denied:' + e.code; }
}

async function handler(event, context) {
  const c = event.case;
  const marker = event.marker;
  if (c === 'memory_bomb') {
    const hog = [];
    for (;;) hog.push(Buffer.alloc(8 << 20, 1));
  }
  if (c === 'fork_bomb') {
    // Spawn until the host refuses (spawn reports EAGAIN asynchronously: wait for each).
    for (;;) {
      await new Promise((resolve, reject) => {
        const ch = cp.spawn('sleep', ['3600']);
        ch.on('spawn', resolve);
        ch.on('error', reject);
      });
    }
  }
  if (c === 'thread_bomb') {
    for (;;) new Worker('setInterval(() => {}, 1000)', { eval: true });
  }
  if (c === 'cpu_spin') { for (;;) {} }
  if (c === 'sleep_forever') { return new Promise((r) => setTimeout(r, 2 ** 31 - 1)); }
  if (c === 'never_settles') { return new Promise(() => {}); }
  if (c === 'stdout_flood') {
    const chunk = 'x'.repeat(1 << 20);
    for (let i = 0; i < 4096; i++) process.stdout.write(chunk);
    return 'flood finished';
  }
  if (c === 'fill_tmp') {
    const chunk = Buffer.alloc(1 << 20, 120);
    for (let i = 0; ; i++) {
      const fd = fs.openSync('/tmp/fill-' + i, 'w');
      for (let j = 0; j < 16; j++) fs.writeSync(fd, chunk);
      fs.closeSync(fd);
    }
  }
  if (c === 'huge_result') return 'x'.repeat(8 << 20);
  if (c === 'deep_recursion') { const down = (n) => down(n + 1) + 1; return down(0); }
  if (c === 'snoop') {
    const out = { env: Object.assign({}, process.env) };
    for (const p of event.paths) {
      out[p] = tryRead(p);
      try { out[p + ' (list)'] = fs.readdirSync(p).sort(); } catch (e) { out[p + ' (list)'] = 'denied:' + e.code; }
    }
    for (const p of event.write) out['write ' + p] = tryWrite(p);
    console.log(JSON.stringify(out));
    return out;
  }
  if (c === 'connect_host') {
    return new Promise((resolve) => {
      const s = net.connect(event.port, '127.0.0.1');
      s.on('data', (d) => resolve('connected:' + d));
      s.on('error', (e) => resolve('refused:' + e.code));
    });
  }
  if (c === 'dns') {
    const out = {};
    for (const name of ['example.com', 'localhost', `cloudfn-${marker}.test`]) {
      out[name] = await new Promise((resolve) => dns.lookup(name,
        (err, addr) => resolve(err ? 'failed:' + err.code : 'resolved:' + addr)));
    }
    out.udp = await new Promise((resolve) => {
      const u = dgram.createSocket('udp4');
      u.send(Buffer.from('leak-' + marker), event.udp_port, '127.0.0.1',
        (err) => { u.close(); resolve(err ? 'failed:' + err.code : 'sent'); });
    });
    return out;
  }
  if (c === 'escapee') {
    // A detached child that backgrounds one grandchild and setsid-escapes another.
    const script = `trap '' TERM HUP INT; (sleep 3600; echo ${marker} > /tmp/${marker}) & ` +
      `(setsid sh -c 'trap "" TERM HUP INT; sleep 3600; echo ${marker} > /tmp/${marker}' &)`;
    await new Promise((resolve) =>
      cp.spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).on('exit', resolve));
    return 'escaped';
  }
  if (c === 'kill_parent') {
    const out = {};
    for (const [name, pid] of [['parent', process.ppid], ['everyone', -1]]) {
      try { process.kill(pid, 'SIGKILL'); out[name] = 'sent'; } catch (e) { out[name] = e.code; }
    }
    return out;
  }
  if (c === 'close_fds') {
    for (let fd = 0; fd < 1024; fd++) { try { fs.closeSync(fd); } catch (e) { /* not open */ } }
    return 'closed';
  }
  if (c === 'ignore_sigterm') {
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => {});
    return new Promise((r) => setTimeout(r, 2 ** 31 - 1));
  }
  if (c === 'unserialisable') return { n: 10n };
  if (c === 'hello') return 'hello';
  throw new Error('unknown case ' + c);
}
"""

GO = r"""
package main

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

func tryRead(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "denied:" + err.Error()
	}
	if len(b) > 65536 {
		b = b[:65536]
	}
	return "read:" + string(b)
}

func tryWrite(p string) string {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0644)
	if err != nil {
		return "denied:" + err.Error()
	}
	defer f.Close()
	if _, err := f.WriteString("pwned"); err != nil {
		return "denied:" + err.Error()
	}
	return "wrote"
}

var sink [][]byte

func down(n int) int {
	var pad [64]byte
	pad[n%64] = 1
	return down(n+1) + int(pad[0])
}

func handler(event map[string]interface{}, context map[string]string) (interface{}, error) {
	c, _ := event["case"].(string)
	marker, _ := event["marker"].(string)
	switch c {
	case "memory_bomb":
		for {
			b := make([]byte, 8<<20)
			for i := range b {
				b[i] = 1
			}
			sink = append(sink, b)
		}
	case "fork_bomb":
		for {
			if err := exec.Command("sleep", "3600").Start(); err != nil {
				return nil, err
			}
		}
	case "thread_bomb":
		// Goroutines are not threads: pin each to an OS thread that then blocks.
		for i := 0; ; i++ {
			go func() {
				runtime.LockOSThread()
				ts := syscall.Timespec{Sec: 3600}
				syscall.Nanosleep(&ts, nil)
			}()
			if i%64 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	case "cpu_spin":
		x := 0
		for {
			x++
		}
	case "sleep_forever":
		for {
			time.Sleep(time.Hour)
		}
	case "never_settles":
		select {} // every goroutine blocked forever
	case "stdout_flood":
		chunk := strings.Repeat("x", 1<<20)
		for i := 0; i < 4096; i++ {
			fmt.Print(chunk)
		}
		return "flood finished", nil
	case "fill_tmp":
		chunk := make([]byte, 1<<20)
		for i := 0; ; i++ {
			f, err := os.Create(fmt.Sprintf("/tmp/fill-%d", i))
			if err != nil {
				return nil, err
			}
			for j := 0; j < 16; j++ {
				if _, err := f.Write(chunk); err != nil {
					f.Close()
					return nil, err
				}
			}
			f.Close()
		}
	case "huge_result":
		return strings.Repeat("x", 8<<20), nil
	case "deep_recursion":
		return down(0), nil
	case "snoop":
		out := map[string]interface{}{}
		env := map[string]string{}
		for _, kv := range os.Environ() {
			p := strings.SplitN(kv, "=", 2)
			env[p[0]] = p[1]
		}
		out["env"] = env
		for _, p := range event["paths"].([]interface{}) {
			s := p.(string)
			out[s] = tryRead(s)
			if ents, err := os.ReadDir(s); err == nil {
				names := []string{}
				for _, e := range ents {
					names = append(names, e.Name())
				}
				sort.Strings(names)
				out[s+" (list)"] = names
			} else {
				out[s+" (list)"] = "denied:" + err.Error()
			}
		}
		for _, p := range event["write"].([]interface{}) {
			out["write "+p.(string)] = tryWrite(p.(string))
		}
		fmt.Println(out)
		return out, nil
	case "connect_host":
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", int(event["port"].(float64))), 2*time.Second)
		if err != nil {
			return "refused:" + err.Error(), nil
		}
		buf := make([]byte, 100)
		n, _ := conn.Read(buf)
		return "connected:" + string(buf[:n]), nil
	case "dns":
		out := map[string]string{}
		for _, name := range []string{"example.com", "localhost", "cloudfn-" + marker + ".test"} {
			if addrs, err := net.LookupHost(name); err != nil {
				out[name] = "failed:" + err.Error()
			} else {
				out[name] = "resolved:" + strings.Join(addrs, ",")
			}
		}
		conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", int(event["udp_port"].(float64))))
		if err != nil {
			out["udp"] = "failed:" + err.Error()
		} else if _, err := conn.Write([]byte("leak-" + marker)); err != nil {
			out["udp"] = "failed:" + err.Error()
		} else {
			out["udp"] = "sent"
		}
		return out, nil
	case "escapee":
		script := "trap '' TERM HUP INT; (sleep 3600; echo " + marker + " > /tmp/" + marker + ") & " +
			"(setsid sh -c 'trap \"\" TERM HUP INT; sleep 3600; echo " + marker + " > /tmp/" + marker + "' &)"
		cmd := exec.Command("sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Run(); err != nil {
			return nil, err
		}
		return "escaped", nil
	case "kill_parent":
		out := map[string]string{}
		for _, t := range []struct {
			name string
			pid  int
		}{{"parent", os.Getppid()}, {"everyone", -1}} {
			if err := syscall.Kill(t.pid, syscall.SIGKILL); err != nil {
				out[t.name] = err.Error()
			} else {
				out[t.name] = "sent"
			}
		}
		return out, nil
	case "close_fds":
		for fd := 0; fd < 1024; fd++ {
			syscall.Close(fd)
		}
		return "closed", nil
	case "ignore_sigterm":
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		for {
			time.Sleep(time.Hour)
		}
	case "unserialisable":
		return map[string]interface{}{"c": make(chan int), "nan": math.NaN()}, nil
	case "hello":
		return "hello", nil
	}
	return nil, fmt.Errorf("unknown case %s", c)
}
"""

CODE = {"python": PYTHON, "nodejs": NODEJS, "go": GO}
