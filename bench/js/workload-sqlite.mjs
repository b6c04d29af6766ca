// Real-program workload: SQLite (npm @sqlite.org/sqlite-wasm, an
// Emscripten build) driven through its own JavaScript API (oo1).
//
//   node [V8 flags] workload-sqlite.mjs PKG_DIR WASM [ROUNDS]
//
// PKG_DIR is the unpacked npm package (its sqlite-wasm/jswasm/sqlite3.mjs
// is the package's own glue); WASM replaces its sqlite3.wasm (the
// original or an instrumented copy). One round opens an in-memory
// database and runs: inserts through prepared statements in transactions,
// index creation, point lookups, range scans, aggregates, LIKE scans, a
// join, updates and deletes. One small round is a warm-up; ROUNDS full
// rounds are timed. Prints one JSON line:
//   {"workload":"sqlite","ms":T,"cpu_ms":C,"warmup_ms":W,"checksum":"...",...}
// where ms (wall) and cpu_ms (main-thread CPU, see workload-clock.mjs)
// cover the timed rounds only (no compilation, instantiation or warm-up)
// and checksum is a hash of every query result.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { cpuClock, cpuMs, wallMs } from './workload-clock.mjs';

const [pkg, wasmFile, roundsArg = '2'] = process.argv.slice(2);
if (!pkg || !wasmFile) {
  throw new Error('usage: workload-sqlite.mjs PKG_DIR WASM [ROUNDS]');
}
const rounds = Number(roundsArg);
const glue = path.join(pkg, 'sqlite-wasm/jswasm/sqlite3.mjs');
const bytes = readFileSync(wasmFile);

// The 3.41 glue is written for browsers and workers: it reads `self` and
// `self.location` at load time (there is no Node build before 3.44).
globalThis.self = globalThis;
globalThis.location = new URL(pathToFileURL(glue).href);

const { default: sqlite3InitModule } = await import(pathToFileURL(glue).href);
// The glue warns on stderr that it cannot install its OPFS VFS (no
// browser APIs); keep the warnings and show them only if start-up fails.
const warnings = [];
const warn = console.warn;
console.warn = (...args) => warnings.push(args.join(' '));
let sqlite3;
try {
  sqlite3 = await sqlite3InitModule({
    // The glue would fetch sqlite3.wasm next to itself (it overrides
    // locateFile, but honours instantiateWasm); hand it WASM instead.
    instantiateWasm(imports, onSuccess) {
      WebAssembly.instantiate(bytes, imports).then(({ instance, module }) => onSuccess(instance, module));
      return {};
    },
    print: (...a) => process.stdout.write(a.join(' ') + '\n'),
    printErr: (...a) => process.stderr.write(a.join(' ') + '\n'),
  });
} catch (e) {
  for (const w of warnings) process.stderr.write(w + '\n');
  throw e;
} finally {
  console.warn = warn;
}

let seed = 1;
function rand() {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed >>> 8;
}
let h = 0;
let statements = 0;
function mix(x) {
  h = Math.imul(h ^ (x | 0), 16777619) >>> 0;
}
function mixNum(x) {
  const v = Math.round(x * 100);
  mix(v);
  mix(Math.floor(v / 4294967296));
}
function mixStr(s) {
  for (let i = 0; i < s.length; i++) mix(s.charCodeAt(i));
}

const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta',
  'iota', 'kappa', 'lambda', 'mu', 'nu', 'xi', 'omicron', 'pi', 'rho', 'sigma'];

// One round at scale s (rows = 1000 * s). Returns nothing; feeds mix().
function round(s) {
  seed = 7;
  const rows = 1000 * s;
  const db = new sqlite3.oo1.DB(':memory:', 'c');
  try {
    db.exec(`CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL,
               category INTEGER NOT NULL, price REAL NOT NULL, qty INTEGER NOT NULL, note TEXT);
             CREATE TABLE orders(id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, amount INTEGER NOT NULL);`);

    // Inserts: prepared statements, 500 rows per transaction.
    const ins = db.prepare('INSERT INTO items(name, category, price, qty, note) VALUES (?, ?, ?, ?, ?)');
    const ord = db.prepare('INSERT INTO orders(item_id, amount) VALUES (?, ?)');
    try {
      for (let done = 0; done < rows; ) {
        db.transaction(() => {
          for (let k = 0; k < 500 && done < rows; k++, done++) {
            const w = WORDS[rand() % WORDS.length];
            ins
              .bind([`item-${rand() % 100000}-${w}`, rand() % 50, (rand() % 100000) / 100, rand() % 1000,
                rand() % 4 === 0 ? null : `${w} note ${done}`])
              .stepReset();
            ord.bind([1 + (rand() % rows), 1 + (rand() % 20)]).stepReset();
            statements += 2;
          }
        });
      }
    } finally {
      ins.finalize();
      ord.finalize();
    }
    db.exec('CREATE INDEX items_cat_price ON items(category, price); CREATE INDEX items_name ON items(name); CREATE INDEX orders_item ON orders(item_id);');

    // Point lookups by primary key.
    const byId = db.prepare('SELECT name, price, qty FROM items WHERE id = ?');
    try {
      for (let i = 0; i < rows; i++) {
        byId.bind(1 + (rand() % rows));
        if (byId.step()) {
          mix(byId.get(0).length);
          mixNum(byId.get(1));
          mix(byId.get(2));
        }
        byId.reset();
        statements++;
      }
    } finally {
      byId.finalize();
    }

    // Range scans on the (category, price) index.
    const range = db.prepare('SELECT count(*), total(qty), min(price) FROM items WHERE category = ? AND price BETWEEN ? AND ?');
    try {
      for (let i = 0; i < rows / 4; i++) {
        const lo = (rand() % 80000) / 100;
        range.bind([rand() % 50, lo, lo + 200]);
        range.step();
        mix(range.get(0));
        mixNum(range.get(1));
        mixNum(range.get(2) ?? -1);
        range.reset();
        statements++;
      }
    } finally {
      range.finalize();
    }

    // Name prefix lookups on the name index.
    for (let i = 0; i < rows / 20; i++) {
      mix(db.selectValue("SELECT count(*) FROM items WHERE name >= ? AND name < ?", [
        `item-${i}`, `item-${i}~`]));
      statements++;
    }

    // Aggregates and LIKE scans (full table scans).
    for (let i = 0; i < 20; i++) {
      db.exec({
        sql: 'SELECT category, count(*), avg(price), max(qty), group_concat(DISTINCT substr(note, 1, 3)) FROM items WHERE qty > ? GROUP BY category ORDER BY category',
        bind: [i * 40],
        rowMode: 'array',
        callback: (row) => {
          mix(row[0]);
          mix(row[1]);
          mixNum(row[2]);
          mix(row[3]);
          mixStr(row[4] ?? '');
        },
      });
      statements++;
    }
    for (let i = 0; i < 40; i++) {
      mix(db.selectValue('SELECT count(*) FROM items WHERE name LIKE ?', [`%-${i}%-${WORDS[i % WORDS.length]}`]));
      mix(db.selectValue('SELECT count(*) FROM items WHERE note LIKE ?', [`%note ${i}%`]));
      statements += 2;
    }

    // A join with an aggregate, per category.
    const join = db.prepare(
      'SELECT count(*), total(o.amount * i.price) FROM orders o JOIN items i ON i.id = o.item_id WHERE i.category = ?',
    );
    try {
      for (let c = 0; c < 50; c++) {
        join.bind(c).step();
        mix(join.get(0));
        mixNum(join.get(1));
        join.reset();
        statements++;
      }
    } finally {
      join.finalize();
    }

    // Updates and deletes, then a final aggregate.
    db.transaction(() => {
      for (let c = 0; c < 50; c += 3) {
        db.exec({ sql: 'UPDATE items SET qty = qty + 1, price = price * 1.01 WHERE category = ?', bind: [c] });
        statements++;
      }
      db.exec({ sql: 'DELETE FROM items WHERE qty % 7 = ?', bind: [3] });
      db.exec('DELETE FROM orders WHERE item_id NOT IN (SELECT id FROM items)');
      statements += 2;
    });
    mix(db.selectValue('SELECT count(*) FROM items'));
    mix(db.selectValue('SELECT count(*) FROM orders'));
    mixNum(db.selectValue('SELECT total(price * qty) FROM items'));
    statements += 3;
  } finally {
    db.close();
  }
}

const w0 = wallMs();
round(1);
const warmupMs = wallMs() - w0;
h = 0;
statements = 0;
const t0 = wallMs();
const c0 = cpuMs();
for (let r = 0; r < rounds; r++) round(10);
const cpu = cpuMs() - c0;
const ms = wallMs() - t0;
process.stdout.write(
  JSON.stringify({
    workload: 'sqlite',
    ms,
    cpu_ms: cpu,
    cpu_clock: cpuClock(),
    warmup_ms: warmupMs,
    checksum: `${h.toString(16)}/${statements}`,
    statements,
  }) + '\n',
);
