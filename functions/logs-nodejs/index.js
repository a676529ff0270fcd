exports.handler = async (event, context) => {
  const user = event.user ?? 'anonymous';
  const steps = event.steps ?? 3;
  const service = process.env.SERVICE ?? '';
  const debug = process.env.DEBUG === 'true';
  const written = { stdout: 0, stderr: 0 };

  const log = (level, message) => {
    if (level === 'DEBUG' && !debug) return;
    const toStderr = level === 'WARN' || level === 'ERROR';
    // console.log writes to stdout, console.error to stderr.
    (toStderr ? console.error : console.log)(`${level} [${service}] ${message}`);
    written[toStderr ? 'stderr' : 'stdout'] += 1;
  };

  log('INFO', `request ${context.request_id ?? '-'} started for user ${user}`);
  for (let step = 1; step <= steps; step++) log('DEBUG', `step ${step}/${steps} done`);
  log('WARN', 'disk usage at 85% (simulated)');
  log('ERROR', 'retrying upstream call after a simulated failure');
  log('INFO', 'finished');

  return { user, lines: written.stdout + written.stderr, ...written };
};
