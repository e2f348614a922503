/**
 * The demo project: a small shop built the way users build theirs — versioned migrations, then
 * seeds — so `dbward demo` shows the migration workflow as well as what dbward sees. Enough
 * schema to exercise every part of the schema model (keys, foreign keys with actions, unique and
 * check constraints, partial and expression indexes, a view, an AUTOINCREMENT counter).
 * Later capabilities (doctor, backups) use it too.
 */

/** File name → content, written to `<project>/migrations/`. Fixed versions, so reruns match. */
export const demoMigrations: Record<string, string> = {
  '20261101090000_create_customers_and_products.sql': `-- migrate:up
CREATE TABLE dbward_demo_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE customers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  country TEXT NOT NULL DEFAULT 'NL',
  created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE products (
  id INTEGER PRIMARY KEY,
  sku TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL,
  price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
  discontinued INTEGER NOT NULL DEFAULT 0
);

-- migrate:down
DROP TABLE products;
DROP TABLE customers;
DROP TABLE dbward_demo_info;
`,
  '20261101090100_create_orders.sql': `-- migrate:up
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE RESTRICT,
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'shipped', 'cancelled')),
  placed_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_open_idx ON orders (placed_at) WHERE status = 'open';
CREATE TABLE order_items (
  order_id INTEGER NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
  product_id INTEGER NOT NULL REFERENCES products(id),
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  price_cents INTEGER NOT NULL,
  PRIMARY KEY (order_id, product_id)
);

-- migrate:down
DROP TABLE order_items;
DROP TABLE orders;
`,
  '20261101090200_add_order_totals_and_email_index.sql': `-- migrate:up
CREATE INDEX customers_email_lower_idx ON customers (lower(email));
CREATE VIEW order_totals AS
  SELECT o.id AS order_id, o.customer_id, SUM(i.quantity * i.price_cents) AS total_cents
  FROM orders o JOIN order_items i ON i.order_id = o.id GROUP BY o.id;

-- migrate:down
DROP VIEW order_totals;
DROP INDEX customers_email_lower_idx;
`,
};

/** File name → content, written to `<project>/seeds/`. */
export const demoSeeds: Record<string, string> = {
  // Reference data: idempotent, so it may run again whenever it changes.
  '01_demo_info.sql': `-- seed:repeatable
INSERT INTO dbward_demo_info (key, value) VALUES ('created_by', 'dbward demo')
  ON CONFLICT (key) DO UPDATE SET value = excluded.value;
`,
  // Sample rows, made deterministically by a script seed (it gets the library handle).
  '02_shop.ts': `// Fills the demo shop with a few hundred rows, the same every time.
type Db = { query(sql: string, params?: unknown[]): Promise<unknown> };

export async function seed(db: Db): Promise<void> {
  const countries = ['NL', 'DE', 'FR', 'US', 'JP'];
  for (let i = 1; i <= 200; i++) {
    await db.query('INSERT INTO customers (email, name, country) VALUES (?, ?, ?)', [
      \`customer\${i}@example.com\`,
      \`Customer \${i}\`,
      countries[i % countries.length],
    ]);
  }
  for (let i = 1; i <= 50; i++) {
    await db.query('INSERT INTO products (id, sku, title, price_cents) VALUES (?, ?, ?, ?)', [
      i,
      \`SKU-\${String(i).padStart(4, '0')}\`,
      \`Product \${i}\`,
      199 + ((i * 137) % 5000),
    ]);
  }
  const statuses = ['open', 'paid', 'shipped', 'cancelled'];
  for (let i = 1; i <= 500; i++) {
    await db.query('INSERT INTO orders (id, customer_id, status) VALUES (?, ?, ?)', [
      i,
      1 + ((i * 7) % 200),
      statuses[i % 4],
    ]);
    for (let j = 0; j < 1 + (i % 3); j++) {
      const product = 1 + ((i * 13 + j * 17) % 50);
      await db.query('INSERT INTO order_items (order_id, product_id, quantity, price_cents) VALUES (?, ?, ?, ?)', [
        i,
        product,
        1 + (j % 4),
        199 + ((product * 137) % 5000),
      ]);
    }
  }
}
`,
};

/** Marks a folder as written by `dbward demo`, so a rerun may replace it and nothing else. */
export const demoProjectMarker = '.dbward-demo';
