// Sizes of the in-test variant of the fault-injection suite (bench/chaos at its issue sizes is `npm run chaos`).
import type { ScenarioOptions } from '../../../../bench/chaos/scenarios.js';

export const SMALL: ScenarioOptions = {
  killRows: 300, kills: 4,
  restartRows: 300, restarts: 1,
  docs: 60, faultRate: 0.3, seed: 3,
  poisonRows: 200, poisonEvery: 25,
  failoverRows: 250, failoverKills: 1,
  // A short drain on a busy CI machine is noisy: only a collapse (below a quarter) fails here.
  backlog: 3_000, maxRssMb: 512, minRateRatio: 0.25,
  timeScale: 0.5,
  log: () => undefined,
};
