// cloudfn Node.js worker. Started as: node [--max-old-space-size=N] node_runner.js REQ_FD RESP_FD
// Frames both ways: 4-byte big-endian length, then UTF-8 JSON. The first request is "init" (load
// the user's code once); then one "invoke" at a time. What the user prints goes to fds 1/2, a
// separate pipe; after each invocation a marker carrying the request's nonce closes its logs.
'use strict';
const fs = require('fs');
const vm = require('vm');
const path = require('path');

const REQ_FD = Number(process.argv[2]);
const RESP_FD = Number(process.argv[3]);

// Close the fds this process inherited beyond stdio and the protocol's, before any user code
// loads: a second line behind the spawner's close_fds (uvloop's spawning ignored it, and each
// worker inherited the API's listening socket). Node cannot tell inherited fds by their flags
// (libuv sets close-on-exec on every fd at start), and its own are open by now, so what it
// closes is decided by kind:
// - sockets, files, folders, devices: Node holds none of these at start, so all go;
// - anon_inode fds (epoll, eventfd, io_uring, signalfd) stay: libuv's loops run on them;
// - a pipe stays only when both its ends are here (libuv's self-pipes); one end of a pipe goes
//   (another process's pipe, or the read end of this worker's own log pipe).
// Left open, then: an inherited anon_inode fd, or a pipe of which both ends leaked in.
function closeInherited(keep) {
  let names;
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch (e) {
    return; // no /proc: nothing to tell Node's own fds by
  }
  const links = new Map();
  for (const n of names) {
    const fd = Number(n);
    if (keep.has(fd)) continue;
    try {
      links.set(fd, fs.readlinkSync('/proc/self/fd/' + n));
    } catch (e) { /* the listing's own fd, closed already */ }
  }
  const ends = new Map();
  for (const link of links.values()) ends.set(link, (ends.get(link) || 0) + 1);
  for (const [fd, link] of links) {
    if (link.startsWith('anon_inode:')) continue;
    if (link.startsWith('pipe:') && ends.get(link) > 1) continue;
    try {
      fs.closeSync(fd);
    } catch (e) { /* gone already */ }
  }
}
closeInherited(new Set([0, 1, 2, REQ_FD, RESP_FD]));

let pending = Buffer.alloc(0);
let waiting = null;

function readSome() {
  const buf = Buffer.allocUnsafe(65536);
  let n;
  for (;;) {
    try {
      n = fs.readSync(REQ_FD, buf, 0, buf.length, null);
      break;
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') { n = 0; break; }
      throw e;
    }
  }
  if (n === 0) process.exit(0); // the platform closed the pipe
  pending = Buffer.concat([pending, buf.subarray(0, n)]);
}

function readFrame() {
  while (pending.length < 4) readSome();
  const size = pending.readUInt32BE(0);
  while (pending.length < 4 + size) readSome();
  const body = pending.subarray(4, 4 + size);
  pending = pending.subarray(4 + size);
  return JSON.parse(body.toString('utf8'));
}

function writeRaw(data) {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length, 0);
  const all = Buffer.concat([head, data]);
  let off = 0;
  while (off < all.length) {
    try {
      off += fs.writeSync(RESP_FD, all, off, all.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      Atomics.wait(sleepCell, 0, 0, 1);
    }
  }
}

function writeFrame(obj) {
  writeRaw(Buffer.from(JSON.stringify(obj), 'utf8'));
}

function closeLogs(nonce) {
  try {
    syncWriter(1)('\x1e' + nonce + '\x1e');
    return true;
  } catch (e) {
    return false;
  }
}

let codeFile = '';
let rootDir = '';  // the function's top folder: stack frames name files relative to it
const fileName = () => path.relative(rootDir || path.dirname(codeFile), codeFile);

function userFrames(err) {
  const frames = [];
  const stack = (err && typeof err.stack === 'string') ? err.stack : '';
  for (const line of stack.split('\n')) {
    const m = /^\s*at (?:(.*?) \()?(.*?):(\d+):(\d+)\)?$/.exec(line);
    if (!m) continue;
    // the function's other files are user code too; installed packages are not
    const dir = (rootDir || path.dirname(codeFile)) + '/';
    const own = m[2] === codeFile || (m[2].startsWith(dir) && !m[2].includes('/node_modules/'));
    if (!own) continue;
    const file = m[2] === codeFile ? fileName() : m[2].slice(dir.length);
    frames.push({ file, line: Number(m[3]), column: Number(m[4]),
      function: (m[1] || '<anonymous>').replace(/^Object\./, '') });
  }
  return frames;
}

function describe(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  try {
    return `thrown value: ${typeof err === 'string' ? err : JSON.stringify(err)}`;
  } catch (e) {
    return `thrown value: ${String(err)}`;
  }
}

function syntaxLocation(err, source) {
  // V8 puts "file:line" on the first line of a SyntaxError's stack.
  const stack = String(err.stack || '');
  const m = new RegExp(codeFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + ':(\\d+)').exec(stack);
  if (!m) return null;
  const line = Number(m[1]);
  // The caret line shows the column.
  const lines = stack.split('\n');
  let column = null;
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*\^+\s*$/.test(lines[i])) { column = lines[i].indexOf('^') + 1; break; }
  }
  return { line, column };
}

function load(init) {
  codeFile = init.code_path;
  rootDir = init.root_path || path.dirname(codeFile);
  const source = fs.readFileSync(codeFile, 'utf8');
  const name = init.handler;
  const bare = name.startsWith('exports.') ? name.slice(8) : name;
  const module = { exports: {} };
  const req = require('module').createRequire(codeFile);
  const params = ['exports', 'require', 'module', '__filename', '__dirname'];
  let wrapped;
  try {
    vm.compileFunction(source, params, { filename: codeFile });
  } catch (e) {
    const loc = syntaxLocation(e, source);
    return [null, { ok: false, error_type: 'CompileError',
      error: `${describe(e)}` + (loc ? ` (line ${loc.line}${loc.column ? `, column ${loc.column}` : ''})` : ''),
      stack: loc ? [{ file: fileName(), line: loc.line, column: loc.column, function: '<module>' }] : [] }];
  }
  // The body is the user's code unchanged (line numbers are theirs); one line after it hands
  // back a function declared under the handler's name, if there is one.
  const tail = name.startsWith('exports.') ? '' : `\n;return typeof ${bare} === 'function' ? ${bare} : undefined;`;
  try {
    wrapped = vm.compileFunction(source + tail, params, { filename: codeFile });
  } catch (e) {
    wrapped = vm.compileFunction(source, params, { filename: codeFile });
  }
  let fn;
  try {
    fn = wrapped.call(module.exports, module.exports, req, module, codeFile, path.dirname(codeFile));
  } catch (e) {
    return [null, { ok: false, error_type: 'CompileError',
      error: `error while loading the code: ${describe(e)}`, stack: userFrames(e) }];
  }
  if (typeof fn !== 'function') {
    const ex = module.exports;
    if (ex && typeof ex[bare] === 'function') fn = ex[bare];
    else if (typeof ex === 'function' && (bare === 'handler' || ex.name === bare)) fn = ex;
  }
  if (typeof fn !== 'function') {
    return [null, { ok: false, error_type: 'CompileError',
      error: `handler '${name}' is not defined in the code (define function ${bare}(event, context) or set exports.${bare})`,
      stack: [] }];
  }
  return [fn, { ok: true, type: 'ready' }];
}

function peakKb() {
  // VmHWM starts afresh at exec (maxRSS keeps the forking parent's peak).
  try {
    const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch (e) { /* no /proc */ }
  return process.resourceUsage().maxRSS;
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// console.log and friends write synchronously: a flood then blocks on the pipe (and the platform
// stops it at the output limit) instead of queueing in memory behind a busy event loop.
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function syncWriter(fd) {
  return function write(chunk, encoding, cb) {
    if (typeof encoding === 'function') { cb = encoding; encoding = undefined; }
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), typeof encoding === 'string' ? encoding : 'utf8');
    let off = 0;
    while (off < buf.length) {
      try {
        off += fs.writeSync(fd, buf, off, buf.length - off);
      } catch (e) {
        if (e.code === 'EAGAIN') { Atomics.wait(sleepCell, 0, 0, 1); continue; }
        if (e.code === 'EPIPE') break;
        throw e;
      }
    }
    if (cb) process.nextTick(cb);
    return true;
  };
}
process.stdout.write = syncWriter(1);
process.stderr.write = syncWriter(2);

// A context is the platform's map as own keys (the original's plain-object form: JSON.stringify
// and spreading show just those), with Lambda's context on a prototype built once: an invocation
// sets two symbols and pays for nothing it does not read.
const DEADLINE = Symbol('deadline');
const SETTLE = Symbol('settle');
const lambdaContext = {
  get functionName() { return this.function_name || ''; },
  get functionVersion() { return String(this.function_version || '$LATEST'); },
  get memoryLimitInMB() { return String(this.memory_limit_mb || ''); }, // a string, as in Lambda
  get awsRequestId() { return this.request_id || ''; },
  get invokedFunctionArn() { return `arn:aws:lambda:local:000000000000:function:${this.functionName}`; },
  get logGroupName() { return `/aws/lambda/${this.functionName}`; },
  get logStreamName() {
    const day = new Date().toISOString().slice(0, 10).replace(/-/g, '/');
    return `${day}/[${this.functionVersion}]${this.function_id || ''}`;
  },
  identity: undefined,
  clientContext: undefined,
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis() { return Math.max(0, Math.floor(this[DEADLINE] - Date.now())); },
  succeed(result) { this[SETTLE](null, result); },
  fail(err) { this[SETTLE](err == null ? new Error('context.fail() was called') : err); },
  done(err, result) { this[SETTLE](err, result); },
};
for (const name of Object.keys(lambdaContext)) {
  Object.defineProperty(lambdaContext, name, { enumerable: false });
}

async function main() {
  const init = readFrame();
  const t0 = process.hrtime.bigint();
  const [handler, reply] = load(init);
  reply.load_ms = Number(process.hrtime.bigint() - t0) / 1e6;
  closeLogs(init.nonce || '');
  reply.nonce = init.nonce || ''; // the platform takes no reply without its request's nonce
  writeFrame(reply);
  if (!handler) return;
  const maxResult = Number(init.max_result_bytes || 6 * 1024 * 1024);
  // Lambda's callback style: a third parameter (event, context, callback), told once at load.
  const callbackStyle = handler.length >= 3;
  const wantRss = init.rss !== false; // false when the platform reads the peak from the cgroup
  let current = null;
  // Errors that escape the handler (a callback that throws, a promise nobody awaits) fail the
  // invocation that is running instead of killing the worker silently.
  process.on('uncaughtException', (err) => { if (current) current(err); else process.exit(70); });
  process.on('unhandledRejection', (err) => { if (current) current(err); });
  // Requests are read synchronously, so nothing of the runner's own keeps the event loop alive:
  // a handler whose promise nothing can settle (no timer, socket or callback pending) would
  // otherwise let Node exit quietly in the middle of the invocation.
  let waiting = null;
  process.on('beforeExit', () => {
    if (waiting) {
      waiting(null);
    } else if (current) {
      current(new Error('the handler returned a promise that can never settle: nothing is left '
        + 'pending in the event loop (no timer, socket or callback) that could resolve it'));
    }
  });
  for (;;) {
    const req = readFrame();
    const ctx = Object.assign(Object.create(lambdaContext), req.context || {});
    ctx[DEADLINE] = Number(req.deadline_ms || Date.now() + 30000);
    let reply;
    try {
      const result = await new Promise((resolve, reject) => {
        current = reject;
        const settle = (err, value) => { if (err !== null && err !== undefined) reject(err); else resolve(value); };
        ctx[SETTLE] = settle;
        try {
          const out = callbackStyle ? handler(req.event, ctx, settle) : handler(req.event, ctx);
          if (out !== undefined && out !== null && typeof out.then === 'function') out.then(resolve, reject);
          else if (out !== undefined || callbackStyle) {
            if (!callbackStyle) resolve(out);
            // else: Lambda's callback style, whose result is what the callback is given
          } else {
            // Nothing returned: as in Lambda, the result is what context.succeed/done (or a
            // callback) gives, or null once nothing is left pending in the event loop.
            waiting = resolve;
          }
        } catch (e) {
          reject(e);
        }
      });
      waiting = null;
      current = null;
      let body;
      try {
        body = JSON.stringify(result === undefined ? null : result);
        if (body === undefined) body = 'null';
      } catch (e) {
        reply = { ok: false, error_type: 'InvalidResult', error: `the result is not JSON-serialisable: ${e.message}` };
      }
      if (!reply) {
        const size = Buffer.byteLength(body);
        if (size > maxResult) {
          reply = { ok: false, error_type: 'OutputTooLarge', error: `the result is ${size} bytes; the limit is ${maxResult}` };
        } else {
          reply = { ok: true, result: null, __raw: body };
        }
      }
    } catch (err) {
      current = null;
      waiting = null;
      let type = 'HandlerError';
      if (err instanceof RangeError && /Invalid (string|array) length|Array buffer allocation failed/.test(String(err.message))) {
        type = 'MemoryLimitExceeded';
      }
      reply = { ok: false, error_type: type, error: describe(err), stack: userFrames(err) };
    }
    reply.maxrss_kb = wantRss ? peakKb() : 0;
    reply.cpu = cpuSeconds();
    reply.logs_closed = closeLogs(req.nonce || '');
    reply.nonce = req.nonce || '';
    if (reply.__raw !== undefined) {
      const raw = reply.__raw;
      delete reply.__raw;
      delete reply.result;
      const rest = JSON.stringify(reply);
      writeRaw(Buffer.from('{"result":' + raw + ',' + rest.slice(1), 'utf8'));
    } else {
      writeFrame(reply);
    }
  }
}

main().catch((e) => {
  try { fs.writeSync(2, `cloudfn runner failed: ${e && e.stack}\n`); } catch (_) { /* ignore */ }
  process.exit(70);
});
