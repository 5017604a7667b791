// What a function that runs SQL needs: a pool, a client, or a transaction's client (ctx.tx).
import type pg from 'pg';

export type Queryable = Pick<pg.ClientBase, 'query'> | Pick<pg.Pool, 'query'>;
