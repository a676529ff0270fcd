// ms comes from package.json beside this file: cloudfn installs it (npm --ignore-scripts)
// before the function's first version becomes current.
const ms = require('ms');

exports.handler = async (event) => ({
  milliseconds: ms(event.duration || '1h'),
  words: ms(event.ms || 60000, { long: true }),
});
