// `stepstore latest <agent> <sender>`: its declaration and the session a
// runtime's resume picks (findLatestSession), and why: the candidates, the
// rule, what it replays, near misses whose sender differs only in spelling,
// and the session crabtalk 0.0.22 would resume when that is another one.

import type { Command } from 'commander';
import { senderSlug, type SessionSummary } from '../../index.js';
import { action, sub } from '../command.js';
import { ago, plural, quoted, table } from '../format.js';
import type { Cli } from '../open.js';
import { print, printJson } from '../output.js';

const seqOf = (handle: string) => Number(handle.slice(handle.lastIndexOf('_') + 1));

export async function latest(cli: Cli, agent: string, sender: string): Promise<number> {
  cli.subject = `${agent} / ${sender}`;
  const handle = await cli.store.findLatestSession(agent, sender);
  const candidates = (await cli.store.listSessions({ agent, createdBy: sender })).sort((a, b) => seqOf(b.handle) - seqOf(a.handle));
  // Sessions of the same agent whose sender has the same slug but is another identity: resume never picks them.
  const nearMisses = (await cli.store.listSessions({ agent })).filter(
    (s) => s.meta.created_by !== sender && senderSlug(s.meta.created_by) === senderSlug(sender),
  );
  // crabtalk resumes by name: the highest seq among `{slug(agent)}_{slug(sender)}_*`, whoever's they are.
  const prefix = `${senderSlug(agent)}_${senderSlug(sender)}_`;
  const crabtalkPick =
    [...candidates, ...nearMisses]
      .map((s) => s.handle)
      .filter((h) => h.startsWith(prefix) && /^[1-9][0-9]*$/.test(h.slice(prefix.length)))
      .sort((a, b) => seqOf(b) - seqOf(a))[0] ?? null;
  const crabtalkDiffers = crabtalkPick !== null && crabtalkPick !== handle;
  const snapshot = handle === null ? null : await cli.store.loadSession(handle);
  const rule = 'resume picks the session with the highest number among those whose meta names exactly this agent and sender (not the most recently updated one)';
  const reason =
    handle === null
      ? `no session of agent "${agent}" has sender "${sender}" exactly: a runtime would create a new session`
      : candidates.length <= 1
        ? `${handle} is the only session of agent "${agent}" and sender "${sender}"`
        : `${handle} has the highest number of the ${candidates.length} sessions of agent "${agent}" and sender "${sender}"`;

  if (cli.json) {
    printJson({
      agent,
      sender,
      handle,
      reason,
      rule,
      candidates: candidates.map(({ handle: h, meta }) => ({ handle: h, messages: meta.message_count, created_at: meta.created_at, updated_at: meta.updated_at })),
      resume: snapshot === null ? null : { archive: snapshot.archive, messages: snapshot.history.length },
      other_senders: nearMisses.map(({ handle: h, meta }) => ({ handle: h, sender: meta.created_by })),
      crabtalk_would_pick: crabtalkPick,
    });
    return handle === null ? 1 : 0;
  }
  const { style } = cli;
  if (handle === null) {
    print(`No session for agent "${agent}" and sender "${sender}": a runtime resuming this pair would start a new one.`);
  } else {
    print(style.bold(style.cyan(handle)));
    print(`why: ${reason}; ${rule}.`);
    if (snapshot !== null) {
      const archive = snapshot.archive === null ? '' : `, after the compaction summarised in archive ${snapshot.archive} (put first)`;
      print(`resume replays ${plural(snapshot.history.length, 'message')}${archive}.`);
    }
    if (candidates.length > 1) {
      print();
      print(candidatesTable(cli, candidates, handle));
    }
  }
  if (crabtalkDiffers) {
    print();
    print(
      style.yellow(
        `note: crabtalk 0.0.22 would resume ${crabtalkPick} instead: it picks the highest number among sessions named ${prefix}*, whatever their sender; stepstore matches the sender exactly.`,
      ),
    );
  }
  if (nearMisses.length > 0) {
    print();
    const these = nearMisses.length === 1 ? '1 session of agent "' + agent + '" belongs to a sender' : `${nearMisses.length} sessions of agent "${agent}" belong to senders`;
    print(style.yellow(`note: ${these} spelled differently, which resume never matches:`));
    for (const { handle: h, meta } of nearMisses) print(`  ${h}  sender ${quoted(meta.created_by)}`);
  }
  return handle === null ? 1 : 0;
}

function candidatesTable(cli: Cli, candidates: SessionSummary[], picked: string): string {
  const { style } = cli;
  return table(
    style,
    [{ header: 'CANDIDATE' }, { header: 'MESSAGES', align: 'right' }, { header: 'CREATED' }, { header: 'UPDATED' }, { header: '' }],
    candidates.map(({ handle, meta }) => [handle, String(meta.message_count), ago(meta.created_at), ago(meta.updated_at), handle === picked ? '← picked' : '']),
    (_r, c, cell) => (c === 4 ? style.green(cell) : cell),
  );
}

export function register(program: Command): void {
  sub(program, 'latest', 'the session a resume would pick for an agent and sender, and why', ['stepstore latest crab tg:12345', 'stepstore latest crab tg:12345 --json'])
    .argument('<agent>', 'agent name, exactly as the runtime passes it')
    .argument('<sender>', 'sender identity, exactly as the runtime passes it')
    .action(action(false, (cli, [agent, sender]) => latest(cli, agent as string, sender as string)));
}
