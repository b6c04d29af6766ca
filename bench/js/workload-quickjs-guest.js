// The JavaScript program that bench/js/workload-quickjs.mjs runs inside
// QuickJS (compiled to wasm). It defines run(n), which does n rounds of
// five phases and returns a 32-bit checksum of everything computed:
//
//   sched    a Richards-style task scheduler: task objects with
//            polymorphic run() methods passing packets through queues
//   plan     a DeltaBlue-style one-way constraint chain: constraint
//            objects, a planner that orders them, repeated re-execution
//   strings  building, splitting, parsing, regex replace, JSON round trips
//   arrays   closures over records: map/filter/reduce, sort with
//            comparators, Map/Set counting
//   trees    allocation-heavy binary trees (GC pressure)
//
// Every phase calls host(x) once per round: a function defined by the
// driver, so each round goes through the module's host-call import (the
// import the instrumenters treat as fork). Everything is deterministic: a
// fixed-seed LCG replaces Math.random and nothing reads the clock.
//
// Recursion stays shallow (at most about 15 nested JavaScript calls):
// every QuickJS call is a nested call of its interpreter function on the
// wasm stack, hence on V8's native stack, and under TurboFan the
// Asyncify -O build of that function has frames of about 45 KB, so V8's
// default 984 KB stack holds only about 22 nested calls (un-instrumented:
// over 2,000).

var seed = 1;
function rand() {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed >>> 8;
}
function mix(h, x) {
  return Math.imul(h ^ (x | 0), 16777619) >>> 0;
}

// ---- sched -------------------------------------------------------------

var KIND_WORK = 0;
var KIND_DEVICE = 1;

function Packet(link, id, kind) {
  this.link = link;
  this.id = id;
  this.kind = kind;
  this.a1 = 0;
  this.a2 = [0, 0, 0, 0];
}
Packet.prototype.append = function (queue) {
  this.link = null;
  if (queue === null) return this;
  var p = queue;
  while (p.link !== null) p = p.link;
  p.link = this;
  return queue;
};

function Task(sched, id, prio, queue) {
  this.sched = sched;
  this.id = id;
  this.prio = prio;
  this.queue = queue;
  this.held = false;
  this.waiting = queue === null;
  this.count = 0;
}
Task.prototype.runnable = function () {
  return !this.held && (!this.waiting || this.queue !== null);
};
Task.prototype.take = function () {
  var p = this.queue;
  if (p !== null) {
    this.queue = p.link;
    this.waiting = false;
  } else {
    this.waiting = true;
  }
  return p;
};

function IdleTask(sched, id, prio, n) {
  Task.call(this, sched, id, prio, null);
  this.waiting = false;
  this.v = 1;
  this.n = n;
}
IdleTask.prototype = Object.create(Task.prototype);
IdleTask.prototype.run = function () {
  if (--this.n === 0) return this.sched.holdSelf();
  if ((this.v & 1) === 0) {
    this.v = this.v >> 1;
    return this.sched.release(4);
  }
  this.v = (this.v >> 1) ^ 0xd008;
  return this.sched.release(5);
};

function WorkerTask(sched, id, prio, queue) {
  Task.call(this, sched, id, prio, queue);
  this.dest = 2;
  this.n = 0;
}
WorkerTask.prototype = Object.create(Task.prototype);
WorkerTask.prototype.run = function () {
  var p = this.take();
  if (p === null) return this.sched.wait();
  this.dest = this.dest === 2 ? 3 : 2;
  p.id = this.dest;
  p.a1 = 0;
  for (var i = 0; i < 4; i++) {
    this.n = this.n + 1;
    if (this.n > 26) this.n = 1;
    p.a2[i] = 64 + this.n;
  }
  return this.sched.queue(p);
};

function HandlerTask(sched, id, prio, queue) {
  Task.call(this, sched, id, prio, queue);
  this.work = null;
  this.dev = null;
}
HandlerTask.prototype = Object.create(Task.prototype);
HandlerTask.prototype.run = function () {
  var p = this.take();
  if (p !== null) {
    if (p.kind === KIND_WORK) this.work = p.append(this.work);
    else this.dev = p.append(this.dev);
  }
  if (this.work !== null) {
    var w = this.work;
    var c = w.a1;
    if (c < 4) {
      if (this.dev !== null) {
        var d = this.dev;
        this.dev = d.link;
        d.a1 = w.a2[c];
        w.a1 = c + 1;
        return this.sched.queue(d);
      }
    } else {
      this.work = w.link;
      return this.sched.queue(w);
    }
  }
  return this.sched.wait();
};

function DeviceTask(sched, id, prio, queue) {
  Task.call(this, sched, id, prio, queue);
  this.pending = null;
}
DeviceTask.prototype = Object.create(Task.prototype);
DeviceTask.prototype.run = function () {
  var p = this.take();
  if (p === null) {
    if (this.pending === null) return this.sched.wait();
    var q = this.pending;
    this.pending = null;
    return this.sched.queue(q);
  }
  this.pending = p;
  this.sched.checksum = mix(this.sched.checksum, p.a1);
  return this.sched.holdSelf();
};

function Scheduler() {
  this.tasks = [];
  this.current = null;
  this.checksum = 0;
  this.switches = 0;
}
Scheduler.prototype.add = function (t) {
  this.tasks[t.id] = t;
  return t;
};
Scheduler.prototype.pick = function () {
  var best = null;
  for (var i = 0; i < this.tasks.length; i++) {
    var t = this.tasks[i];
    if (t !== undefined && t.runnable() && (best === null || t.prio > best.prio)) best = t;
  }
  return best;
};
Scheduler.prototype.holdSelf = function () {
  this.current.held = true;
  return this.pick();
};
Scheduler.prototype.wait = function () {
  this.current.waiting = true;
  return this.pick();
};
Scheduler.prototype.release = function (id) {
  var t = this.tasks[id];
  t.held = false;
  return t.prio > this.current.prio ? t : this.current;
};
Scheduler.prototype.queue = function (p) {
  var t = this.tasks[p.id];
  p.link = null;
  t.queue = p.append(t.queue);
  t.waiting = false;
  return t.prio > this.current.prio ? t : this.current;
};
Scheduler.prototype.go = function () {
  this.current = this.pick();
  while (this.current !== null) {
    this.switches++;
    this.current.count++;
    this.current = this.current.run();
  }
};

function sched(rounds) {
  var s = new Scheduler();
  s.add(new IdleTask(s, 0, 0, rounds));
  var wq = new Packet(null, 1, KIND_WORK);
  wq = new Packet(wq, 1, KIND_WORK);
  s.add(new WorkerTask(s, 1, 1000, wq));
  var hq = new Packet(null, 4, KIND_DEVICE);
  hq = new Packet(hq, 4, KIND_DEVICE);
  hq = new Packet(hq, 4, KIND_DEVICE);
  s.add(new HandlerTask(s, 2, 2000, hq));
  var gq = new Packet(null, 5, KIND_DEVICE);
  gq = new Packet(gq, 5, KIND_DEVICE);
  gq = new Packet(gq, 5, KIND_DEVICE);
  s.add(new HandlerTask(s, 3, 3000, gq));
  s.add(new DeviceTask(s, 4, 4000, null));
  s.add(new DeviceTask(s, 5, 5000, null));
  s.go();
  var h = mix(s.checksum, s.switches);
  for (var i = 0; i < s.tasks.length; i++) h = mix(h, s.tasks[i].count);
  return h;
}

// ---- plan --------------------------------------------------------------

function Variable(name, value) {
  this.name = name;
  this.value = value;
  this.determinedBy = null;
  this.constraints = [];
  this.stay = true;
}

function Constraint(strength) {
  this.strength = strength;
}
Constraint.prototype.addTo = function () {
  var vs = this.vars();
  for (var i = 0; i < vs.length; i++) vs[i].constraints.push(this);
};

function EqualC(a, b, strength) {
  Constraint.call(this, strength);
  this.a = a;
  this.b = b;
  this.addTo();
}
EqualC.prototype = Object.create(Constraint.prototype);
EqualC.prototype.vars = function () {
  return [this.a, this.b];
};
EqualC.prototype.output = function () {
  return this.b;
};
EqualC.prototype.inputs = function () {
  return [this.a];
};
EqualC.prototype.execute = function () {
  this.b.value = this.a.value;
};

function ScaleC(src, scale, offset, dst, strength) {
  Constraint.call(this, strength);
  this.src = src;
  this.scale = scale;
  this.offset = offset;
  this.dst = dst;
  this.addTo();
}
ScaleC.prototype = Object.create(Constraint.prototype);
ScaleC.prototype.vars = function () {
  return [this.src, this.scale, this.offset, this.dst];
};
ScaleC.prototype.output = function () {
  return this.dst;
};
ScaleC.prototype.inputs = function () {
  return [this.src, this.scale, this.offset];
};
ScaleC.prototype.execute = function () {
  this.dst.value = (this.src.value * this.scale.value + this.offset.value) | 0;
};

// Orders the constraints so each runs after the constraints that determine
// its inputs (a depth-first topological sort, as DeltaBlue's planner does
// after every edit). Iterative: see the note on recursion depth at the top.
function makePlan(constraints) {
  var plan = [];
  var done = new Set();
  var byOutput = new Map();
  for (var i = 0; i < constraints.length; i++) byOutput.set(constraints[i].output(), constraints[i]);
  for (var k = constraints.length - 1; k >= 0; k--) {
    if (done.has(constraints[k])) continue;
    done.add(constraints[k]);
    var stack = [constraints[k]];
    var next = [0];
    while (stack.length > 0) {
      var top = stack.length - 1;
      var c = stack[top];
      var ins = c.inputs();
      var j = next[top];
      if (j < ins.length) {
        next[top] = j + 1;
        var up = byOutput.get(ins[j]);
        if (up !== undefined && !done.has(up)) {
          done.add(up);
          stack.push(up);
          next.push(0);
        }
      } else {
        stack.pop();
        next.pop();
        plan.push(c);
      }
    }
  }
  return plan;
}

function plan(n) {
  var h = 0;
  var vars = [];
  var cs = [];
  for (var i = 0; i <= n; i++) vars.push(new Variable('v' + i, 0));
  for (var i = 0; i < n; i++) cs.push(new EqualC(vars[i], vars[i + 1], i % 3));
  var scale = new Variable('scale', 10);
  var offset = new Variable('offset', 1000);
  var dsts = [];
  for (var i = 0; i < n; i += 10) {
    var d = new Variable('d' + i, 0);
    dsts.push(d);
    cs.push(new ScaleC(vars[i], scale, offset, d, 2));
  }
  var p = makePlan(cs);
  for (var edit = 0; edit < 20; edit++) {
    vars[0].value = edit * 7 + 3;
    scale.value = 5 + (edit % 4);
    for (var i = 0; i < p.length; i++) p[i].execute();
    h = mix(h, vars[n].value);
    for (var j = 0; j < dsts.length; j++) h = mix(h, dsts[j].value);
  }
  return mix(h, p.length);
}

// ---- strings -----------------------------------------------------------

var WORDS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta',
  'iota', 'kappa', 'lambda', 'mu', 'nu', 'xi', 'omicron', 'pi', 'rho', 'sigma'];

function strings(lines) {
  var h = 0;
  var rows = [];
  for (var i = 0; i < lines; i++) {
    var w = WORDS[rand() % WORDS.length];
    rows.push(`${i},${w},${rand() % 10000},${w.toUpperCase()}-${(rand() % 997).toString(16)}`);
  }
  var csv = rows.join('\n');
  var parsed = csv.split('\n').map(function (line) {
    var f = line.split(',');
    return { id: parseInt(f[0], 10), word: f[1], n: parseInt(f[2], 10), tag: f[3] };
  });
  for (var i = 0; i < parsed.length; i++) {
    var r = parsed[i];
    var t = r.tag.replace(/-([0-9a-f]+)$/, function (_, hex) {
      return ':' + parseInt(hex, 16);
    });
    h = mix(h, r.id + r.n + t.length);
    if (r.word.indexOf('ta') >= 0) h = mix(h, r.word.charCodeAt(r.word.length - 1));
  }
  var json = JSON.stringify(parsed.slice(0, 200));
  var back = JSON.parse(json);
  h = mix(h, json.length);
  h = mix(h, back.length + back[back.length - 1].n);
  var s = '';
  for (var i = 0; i < 300; i++) s += WORDS[i % WORDS.length].charAt(i % 3);
  for (var i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return h;
}

// ---- arrays ------------------------------------------------------------

function arrays(n) {
  var recs = [];
  for (var i = 0; i < n; i++) {
    recs.push({ k: rand() % 1000, w: WORDS[rand() % WORDS.length], v: rand() % 100000 });
  }
  var limit = 500;
  var big = recs.filter((r) => r.k < limit).map((r) => ({ k: r.k, v: r.v * 2, w: r.w }));
  var total = big.reduce((acc, r) => (acc + r.v) % 1000000007, 0);
  var byKey = recs.slice().sort((a, b) => a.k - b.k || a.v - b.v);
  var byWord = recs.slice().sort((a, b) => (a.w < b.w ? -1 : a.w > b.w ? 1 : a.v - b.v));
  var counts = new Map();
  recs.forEach((r) => counts.set(r.w, (counts.get(r.w) || 0) + 1));
  var seen = new Set();
  for (var i = 0; i < recs.length; i++) seen.add(recs[i].k);
  var adders = [];
  for (var i = 0; i < 50; i++) adders.push(((j) => (x) => x + j)(i));
  var acc = 0;
  for (var i = 0; i < n; i++) acc = adders[i % adders.length](acc) % 65521;
  var h = mix(total, big.length);
  for (var i = 0; i < byKey.length; i += 37) h = mix(h, byKey[i].v);
  for (var i = 0; i < byWord.length; i += 41) h = mix(h, byWord[i].v);
  WORDS.forEach((w) => {
    h = mix(h, counts.get(w) || 0);
  });
  return mix(mix(h, seen.size), acc);
}

// ---- trees -------------------------------------------------------------

function Node(left, right, v) {
  this.left = left;
  this.right = right;
  this.v = v;
}
function build(depth, v) {
  if (depth === 0) return new Node(null, null, v);
  return new Node(build(depth - 1, 2 * v), build(depth - 1, 2 * v + 1), v);
}
function check(t) {
  if (t.left === null) return t.v & 0xff;
  return (t.v + check(t.left) - check(t.right)) | 0;
}
function trees(depth, count) {
  var h = 0;
  var keep = build(depth, 1);
  for (var i = 0; i < count; i++) h = mix(h, check(build(depth - 2, i)));
  return mix(h, check(keep));
}

// ---- driver ------------------------------------------------------------

function run(n) {
  seed = 1;
  var h = 0;
  for (var r = 0; r < n; r++) {
    h = mix(h, host(sched(3000)));
    h = mix(h, host(plan(400)));
    h = mix(h, host(strings(400)));
    h = mix(h, host(arrays(1500)));
    h = mix(h, host(trees(10, 24)));
  }
  return h;
}
