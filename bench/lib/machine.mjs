// What machine and filesystem the numbers come from.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sqliteVersion } from './sqlite.mjs';

function mountOf(dir) {
  try {
    const real = fs.realpathSync(dir);
    let best = null;
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mountPoint, type, options] = line.split(' ');
      if (!mountPoint) continue;
      const mp = mountPoint.replace(/\\040/g, ' ');
      if ((real === mp || real.startsWith(mp.endsWith('/') ? mp : mp + '/')) && (!best || mp.length > best.mountPoint.length)) {
        best = { device, mountPoint: mp, type, options };
      }
    }
    return best;
  } catch {
    return null;
  }
}

function git(args, cwd) {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function machineInfo(tmpDir, projectDir) {
  const cpus = os.cpus();
  let statfsType = null;
  try {
    statfsType = '0x' + fs.statfsSync(tmpDir).type.toString(16);
  } catch {
    // statfs unavailable
  }
  const dirty = git(['status', '--porcelain', '--', 'src'], projectDir);
  return {
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? null,
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    tmpDir,
    fs: { ...mountOf(tmpDir), statfsType },
    sqlite: sqliteVersion(),
    gitCommit: git(['rev-parse', '--short', 'HEAD'], projectDir),
    srcDirty: dirty === null ? null : dirty !== '',
    exposeGc: typeof globalThis.gc === 'function',
    hostname: os.hostname(),
    script: path.relative(projectDir, process.argv[1] ?? ''),
  };
}
