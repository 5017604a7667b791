// Example: fan out and join with child runs. A month's invoicing starts one child run per customer
// (each its own durable run: retried, inspected and cancelled on its own), waits for all of them
// without holding a worker, and records the month's total from their outputs, in customer order.
//
// Start it from SQL (e.g. from your billing job, inside its transaction):
//   SELECT walflow.start('monthly-invoices', '{"month": "2026-11", "orders": [
//     {"customer": "acme", "amount": 120.5}, {"customer": "globex", "amount": 80}, {"customer": "acme", "amount": 19.5}]}');
import { definePipeline } from 'walflow';

interface Order { customer: string; amount: number }
interface MonthInput { month: string; orders: Order[] }
interface CustomerInput { month: string; customer: string; amounts: number[] }
interface Invoice { customer: string; total: number }

// Shared by both pipelines; idempotent, run by every process that loads the file.
const setup = async ({ db }: { db: { query: (sql: string) => Promise<unknown> } }) => {
  await db.query(`CREATE TABLE IF NOT EXISTS invoices (
    month text NOT NULL, customer text NOT NULL, total numeric NOT NULL, PRIMARY KEY (month, customer))`);
};

export const invoiceCustomer = definePipeline<CustomerInput>({
  name: 'invoice-customer',
  setup,
  targets: ['invoices'],
  steps: [{
    name: 'bill',
    run: async (ctx): Promise<Invoice> => {
      const total = ctx.runInput.amounts.reduce((a, b) => a + b, 0);
      // Commits with the checkpoint: one invoice per customer and month, however often workers crash.
      const tx = await ctx.tx();
      await tx.query('INSERT INTO invoices (month, customer, total) VALUES ($1, $2, $3)', [ctx.runInput.month, ctx.runInput.customer, total]);
      return { customer: ctx.runInput.customer, total };
    },
  }],
});

export default definePipeline<MonthInput>({
  name: 'monthly-invoices',
  setup,
  steps: [
    {
      name: 'invoice-each-customer',
      // Started idempotently: a parent re-executed after a crash does not bill anyone twice.
      children: (ctx) => {
        const byCustomer = new Map<string, number[]>();
        for (const o of ctx.runInput.orders) byCustomer.set(o.customer, [...(byCustomer.get(o.customer) ?? []), o.amount]);
        return [...byCustomer].sort(([a], [b]) => a.localeCompare(b)).map(([customer, amounts]) => ({
          pipeline: 'invoice-customer', key: `${ctx.runInput.month}:${customer}`, input: { month: ctx.runInput.month, customer, amounts },
        }));
      },
      join: 'all',          // outputs in the order above; a failed child fails the month (after its own retries)
      timeout: '1h',
    },
    {
      name: 'summary',
      run: (ctx, invoices: Invoice[]) => ({ month: ctx.runInput.month, customers: invoices.length, total: invoices.reduce((a, i) => a + i.total, 0) }),
    },
  ],
});
