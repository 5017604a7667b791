// npm run chaos [-- flags]: the fault-injection suite. Each scenario gets a throwaway PostgreSQL and
// real `walflow run` processes, injects its faults, and checks the invariants at the end. Prints a
// table, then (as its LAST line) one JSON object with the totals; exits 1 if anything was lost or
// duplicated, or an invariant failed.
//
//   --only sigkill,pg-restart,provider,poison,failover,backlog,schedule-per-second-under-kills,
//          sleepers-across-kills-and-pg-restart,signals-under-kills,children-under-kills,
//          sql-pipelines-created-and-dropped-under-kills   (default: all, in that order)
//   --schedule-seconds 60                scenario 7 (per-second schedule under kills; at least 60 for the issue's proof)
//   --sleepers 2000 --signal-runs 300 --parents 40   the durable waits' scenarios (sleepers, signals x5, parents x100 children)
//   --sql-pipeline-seconds 60            scenario 8 (SQL pipelines created, altered and dropped under kills)
//   --kill-rows 5000 --kills 20          scenario 1
//   --restart-rows 5000 --restarts 4     scenario 2
//   --docs 1000 --fault-rate 0.25 --seed 7   scenario 3
//   --poison-rows 3000 --poison-every 50 scenario 4
//   --failover-rows 4000 --failover-kills 4  scenario 5 (kills with 2, then again with 3 processes)
//   --backlog 200000 --max-rss-mb 512 --min-rate-ratio 0.5   scenario 6
//   --time-scale 1                       stretch (>1) or squeeze (<1) how long loads are spread out
//   --quick                              small sizes (about two minutes)
import { FULL, SCENARIOS, type ScenarioOptions, type ScenarioResult } from './scenarios.js';

const QUICK: Omit<ScenarioOptions, 'log'> = {
  killRows: 600, kills: 6, restartRows: 600, restarts: 1, docs: 150, faultRate: 0.3, seed: 3,
  poisonRows: 400, poisonEvery: 40, failoverRows: 500, failoverKills: 1, backlog: 5_000, maxRssMb: 512,
  sleepers: 300, signalRuns: 60, parents: 6,
};

const FLAGS: Record<string, Exclude<keyof ScenarioOptions, 'log'>> = {
  '--kill-rows': 'killRows', '--kills': 'kills', '--restart-rows': 'restartRows', '--restarts': 'restarts',
  '--docs': 'docs', '--fault-rate': 'faultRate', '--seed': 'seed', '--poison-rows': 'poisonRows', '--poison-every': 'poisonEvery',
  '--failover-rows': 'failoverRows', '--failover-kills': 'failoverKills', '--backlog': 'backlog', '--max-rss-mb': 'maxRssMb', '--min-rate-ratio': 'minRateRatio', '--time-scale': 'timeScale',
  '--schedule-seconds': 'scheduleSeconds', '--sleepers': 'sleepers', '--signal-runs': 'signalRuns', '--parents': 'parents',
  '--sql-pipeline-seconds': 'sqlPipelineSeconds',
};

function parse(argv: string[]): { opts: ScenarioOptions; only: string[] } {
  const opts: ScenarioOptions = { ...(argv.includes('--quick') ? QUICK : FULL), log: (m) => process.stderr.write(`${m}\n`) };
  let only = Object.keys(SCENARIOS);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') continue;
    if (a === '--only') {
      only = (argv[++i] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = only.filter((s) => !SCENARIOS[s]);
      if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')} (known: ${Object.keys(SCENARIOS).join(', ')})`);
      continue;
    }
    const key = FLAGS[a];
    const v = Number(argv[++i]);
    if (!key || !Number.isFinite(v) || v < 0) throw new Error(`bad flag ${a} ${argv[i] ?? ''} (flags: --only, --quick, ${Object.keys(FLAGS).join(', ')})`);
    (opts as unknown as Record<string, number>)[key] = v;
  }
  return { opts, only };
}

function table(results: ScenarioResult[]): string {
  const head = ['scenario', 'faults injected', 'rows (at the end)', 'completed', 'failed-as-expected', 'lost', 'duplicated', 'stuck', 'slot', 'time', 'result'];
  const rows = results.map((r) => [
    r.scenario, `${r.faults} (${r.faultDetail})`, r.metrics.changes !== undefined ? `${r.rows} (${String(r.metrics.changes)} changes)` : String(r.rows), String(r.completed), String(r.failedExpected), String(r.lost), String(r.duplicated),
    String(r.stuck), r.slotCaughtUp === null ? '-' : r.slotCaughtUp ? 'caught up' : 'BEHIND', `${r.seconds.toFixed(1)} s`, r.problems.length ? 'FAIL' : 'ok',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

const { opts, only } = parse(process.argv.slice(2));
const results: ScenarioResult[] = [];
const t0 = Date.now();
for (const name of only) {
  opts.log(`== ${name}`);
  try {
    const r = await SCENARIOS[name]!(opts);
    results.push(r);
    opts.log(`   ${r.problems.length ? 'FAIL' : 'ok'} in ${r.seconds} s ${JSON.stringify(r.metrics)}${r.problems.length ? `\n   ${r.problems.join('\n   ')}` : ''}`);
  } catch (err) {
    opts.log(`   ERROR ${(err as Error).stack ?? String(err)}`);
    results.push({
      scenario: name, faults: 0, faultDetail: 'scenario crashed', rows: 0, completed: 0, failedExpected: 0, failedUnexpected: 0, lost: 0, duplicated: 0,
      stuck: 0, slotCaughtUp: null, seconds: 0, problems: [`scenario crashed: ${(err as Error).message}`], metrics: {},
    });
  }
}

const sum = (k: 'faults' | 'lost' | 'duplicated' | 'completed' | 'failedExpected' | 'failedUnexpected' | 'stuck' | 'rows') => results.reduce((n, r) => n + r[k], 0);
process.stdout.write(`${table(results)}\n`);
for (const r of results) for (const p of r.problems) process.stdout.write(`${r.scenario}: ${p}\n`);
const summary = {
  scenarios: results.length,
  faults: sum('faults'),
  lost: sum('lost'),
  duplicated: sum('duplicated'),
  completed: sum('completed'),
  failedExpected: sum('failedExpected'),
  failedUnexpected: sum('failedUnexpected'),
  stuck: sum('stuck'),
  failedScenarios: results.filter((r) => r.problems.length > 0).map((r) => r.scenario),
  seconds: Math.round((Date.now() - t0) / 1000),
  details: Object.fromEntries(results.map((r) => [r.scenario, r.metrics])),
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
process.exitCode = summary.lost > 0 || summary.duplicated > 0 || summary.failedScenarios.length > 0 ? 1 : 0;
