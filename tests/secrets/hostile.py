"""Function code for the secrets tests: holders that read their secret (file and variable), and
hostile functions that hunt for secrets they did not list. Each returns what it found."""

from __future__ import annotations

# A holder: the file /run/secrets/<name>, the variable DB_PW, and what /run/secrets lists.
HOLDER = {
    "python": (
        "import os\n"
        "def handler(event, context):\n"
        "    name = event.get('name', 'db-pw')\n"
        "    v = open('/run/secrets/' + name).read()\n"
        "    if event.get('leak'):\n"
        "        import base64\n"
        "        print('leaking', v, base64.b64encode(v.encode()).decode())\n"
        "    return {'file': v, 'env': os.environ.get('DB_PW'), 'ls': sorted(os.listdir('/run/secrets'))}\n"
    ),
    "nodejs": (
        "const fs = require('fs');\n"
        "function handler(event) {\n"
        "  const name = event.name || 'db-pw';\n"
        "  const v = fs.readFileSync('/run/secrets/' + name, 'utf8');\n"
        "  if (event.leak) console.log('leaking', v, Buffer.from(v).toString('base64'));\n"
        "  return {file: v, env: process.env.DB_PW || null, ls: fs.readdirSync('/run/secrets').sort()};\n"
        "}\n"
    ),
    "go": (
        'import ("os"; "sort")\n\n'
        "func handler(event interface{}, context map[string]string) interface{} {\n"
        '\tname := "db-pw"\n'
        "\tif m, ok := event.(map[string]interface{}); ok {\n"
        '\t\tif n, ok := m["name"].(string); ok { name = n }\n'
        "\t}\n"
        '\tb, err := os.ReadFile("/run/secrets/" + name)\n'
        '\tif err != nil { return map[string]interface{}{"error": err.Error()} }\n'
        '\tents, _ := os.ReadDir("/run/secrets")\n'
        "\tls := []string{}\n"
        "\tfor _, e := range ents { ls = append(ls, e.Name()) }\n"
        "\tsort.Strings(ls)\n"
        "\tvar env interface{}\n"
        '\tif v, ok := os.LookupEnv("DB_PW"); ok { env = v }\n'
        '\treturn map[string]interface{}{"file": string(b), "env": env, "ls": ls}\n'
        "}\n"
    ),
}

# A hunter: every file it can think of where a secret might show, read whole. `event.paths` adds
# host paths (the data directory's store and key).
HUNTER = {
    "python": (
        "import glob, os\n"
        "def handler(event, context):\n"
        "    paths = ['/run/secrets', '/run/secrets/db-pw'] + event.get('paths', [])\n"
        "    paths += glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline')\n"
        "    for fd in glob.glob('/proc/*/fd/*'):  # memfds (how the launcher passes data), not pipes\n"
        "        try:\n"
        "            if os.readlink(fd).startswith('/memfd:'):\n"
        "                paths.append(fd)\n"
        "        except OSError:\n"
        "            pass\n"
        "    paths += glob.glob('/run/**', recursive=True) + glob.glob('/tmp/**', recursive=True)\n"
        "    got, errors = [], 0\n"
        "    for p in paths:\n"
        "        try:\n"
        "            with open(p, 'rb') as f:\n"
        "                got.append(f.read(1 << 20).decode('latin-1'))\n"
        "        except OSError:\n"
        "            errors += 1\n"
        "    got.append(repr(dict(os.environ)))\n"
        "    return {'read': len(got), 'errors': errors, 'dump': '\\n'.join(got)}\n"
    ),
    "nodejs": (
        "const fs = require('fs');\n"
        "function handler(event) {\n"
        "  let paths = ['/run/secrets', '/run/secrets/db-pw'].concat(event.paths || []);\n"
        "  for (const pid of fs.readdirSync('/proc')) {\n"
        "    if (!/^[0-9]+$/.test(pid)) continue;\n"
        "    paths.push('/proc/' + pid + '/environ', '/proc/' + pid + '/cmdline');\n"
        "    try {\n"
        "      for (const fd of fs.readdirSync('/proc/' + pid + '/fd')) {\n"
        "        const p = '/proc/' + pid + '/fd/' + fd;\n"
        "        try { if (fs.readlinkSync(p).startsWith('/memfd:')) paths.push(p); } catch (e) {}\n"
        "      }\n"
        "    }\n"
        "    catch (e) {}\n"
        "  }\n"
        "  const got = []; let errors = 0;\n"
        "  for (const p of paths) {\n"
        "    try { got.push(fs.readFileSync(p).toString('latin1')); } catch (e) { errors++; }\n"
        "  }\n"
        "  got.push(JSON.stringify(process.env));\n"
        "  return {read: got.length, errors: errors, dump: got.join('\\n')};\n"
        "}\n"
    ),
    "go": (
        'import ("os"; "path/filepath"; "strings")\n\n'
        "func handler(event interface{}, context map[string]string) interface{} {\n"
        '\tpaths := []string{"/run/secrets", "/run/secrets/db-pw"}\n'
        "\tif m, ok := event.(map[string]interface{}); ok {\n"
        '\t\tif ps, ok := m["paths"].([]interface{}); ok {\n'
        "\t\t\tfor _, p := range ps { paths = append(paths, p.(string)) }\n"
        "\t\t}\n"
        "\t}\n"
        '\tfor _, pat := range []string{"/proc/*/environ", "/proc/*/cmdline"} {\n'
        "\t\tm, _ := filepath.Glob(pat)\n"
        "\t\tpaths = append(paths, m...)\n"
        "\t}\n"
        '\tfds, _ := filepath.Glob("/proc/*/fd/*")\n'
        "\tfor _, fd := range fds {\n"
        '\t\tif l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "/memfd:") {\n'
        "\t\t\tpaths = append(paths, fd)\n"
        "\t\t}\n"
        "\t}\n"
        "\tgot := []string{}\n"
        "\tfails := 0\n"
        "\tfor _, p := range paths {\n"
        "\t\tb, err := os.ReadFile(p)\n"
        "\t\tif err != nil { fails++; continue }\n"
        "\t\tgot = append(got, string(b))\n"
        "\t}\n"
        '\tgot = append(got, strings.Join(os.Environ(), "\\n"))\n'
        '\treturn map[string]interface{}{"read": len(got), "fails": fails, "dump": strings.Join(got, "\\n")}\n'
        "}\n"
    ),
}
