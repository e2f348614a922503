/**
 * The demo database: a small shop, enough to show every part of the schema model (keys,
 * foreign keys with actions, unique and check constraints, partial and expression indexes,
 * a view, an AUTOINCREMENT counter). Later capabilities (migrations, doctor, backups) use it too.
 */
export const demoSchema = `
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
CREATE INDEX customers_email_lower_idx ON customers (lower(email));
CREATE VIEW order_totals AS
  SELECT o.id AS order_id, o.customer_id, SUM(i.quantity * i.price_cents) AS total_cents
  FROM orders o JOIN order_items i ON i.order_id = o.id GROUP BY o.id;
`;

/** Statements with `?` parameters that fill the demo with a few hundred rows, deterministically. */
export function* demoRows(): Generator<[string, unknown[]]> {
  const countries = ['NL', 'DE', 'FR', 'US', 'JP'];
  for (let i = 1; i <= 200; i++) {
    yield [
      'INSERT INTO customers (email, name, country) VALUES (?, ?, ?)',
      [`customer${i}@example.com`, `Customer ${i}`, countries[i % countries.length]],
    ];
  }
  for (let i = 1; i <= 50; i++) {
    yield [
      'INSERT INTO products (id, sku, title, price_cents) VALUES (?, ?, ?, ?)',
      [i, `SKU-${String(i).padStart(4, '0')}`, `Product ${i}`, 199 + ((i * 137) % 5000)],
    ];
  }
  const statuses = ['open', 'paid', 'shipped', 'cancelled'];
  for (let i = 1; i <= 500; i++) {
    yield [
      'INSERT INTO orders (id, customer_id, status) VALUES (?, ?, ?)',
      [i, 1 + ((i * 7) % 200), statuses[i % 4]],
    ];
    for (let j = 0; j < 1 + (i % 3); j++) {
      const product = 1 + ((i * 13 + j * 17) % 50);
      yield [
        'INSERT INTO order_items (order_id, product_id, quantity, price_cents) VALUES (?, ?, ?, ?)',
        [i, product, 1 + (j % 4), 199 + ((product * 137) % 5000)],
      ];
    }
  }
}
