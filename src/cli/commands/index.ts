// Every command of `stepstore`, in the order its --help lists them. A new
// command is a file beside this one exporting `register` (see ../command.ts),
// imported here and put in its place in COMMANDS.

import type { Register } from '../command.js';
import { register as fsck } from './fsck.js';
import { register as forkAndRewind } from './history.js';
import { register as latest } from './latest.js';
import { register as list } from './list.js';
import { register as migrate } from './migrate.js';
import { register as rmAndPrune } from './remove.js';
import { register as show } from './show.js';
import { register as stats } from './stats.js';
import { register as tail } from './tail.js';
import { register as exportAndImport } from './transfer.js';

export const COMMANDS: Register[] = [list, show, latest, tail, forkAndRewind, rmAndPrune, fsck, exportAndImport, migrate, stats];
