// Removes the server's temporary data directory (database, objects, keys) after the run.
const fs = require('fs');

module.exports = async () => {
  const dir = process.env.DARKROOM_E2E_DATA;
  if (dir && dir.includes('darkroom-e2e-')) fs.rmSync(dir, { recursive: true, force: true });
};
