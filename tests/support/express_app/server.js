// The product API of the session tests, written the way the Express app cachecar fronts keeps
// its sessions: express-session with connect-redis in the same Redis. Environment: REDIS_URL,
// SESSION_SECRET (comma-separated; the first signs). Listens on a free loopback port and
// prints "listening on <port>". GET /stats (asked directly, not through cachecar) tells how
// many requests reached it.
'use strict';

const express = require('express');
const session = require('express-session');
const RedisStore = require('connect-redis').default;
const { createClient } = require('redis');

async function main() {
  const client = createClient({ url: process.env.REDIS_URL });
  await client.connect();
  const app = express();
  let reached = 0;
  app.get('/stats', (req, res) => res.json({ reached }));
  app.use((req, res, next) => {
    reached += 1;
    next();
  });
  app.use(session({
    store: new RedisStore({ client }),
    secret: process.env.SESSION_SECRET.split(','),
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 3600 * 1000 },
  }));
  // Logs a user in as passport would: the user id under passport.user.
  app.post('/login', (req, res) => {
    req.session.passport = { user: req.query.user || 'alice' };
    res.json({ ok: true });
  });
  app.post('/logout', (req, res) => {
    req.session.destroy(() => res.json({ ok: true }));
  });
  // What the app was told: cachecar's user header, and its own view of the session.
  const whoami = (req, res) => {
    res.json({
      header: req.get('X-Session-User') || null,
      user: (req.session.passport && req.session.passport.user) || null,
    });
  };
  app.get('/me', whoami);
  app.get('/feed', whoami);
  // The same for everyone (a route cachecar may mark shared), and each answer numbered, so a
  // test tells a stored answer from a fresh one.
  let served = 0;
  app.get('/catalog', (req, res) => {
    served += 1;
    res.json({catalog: ['tea', 'cake'], answer: served});
  });
  // Its user's alone (per_user), numbered likewise; a write to it changes every user's.
  app.get('/mine', (req, res) => {
    served += 1;
    res.json({user: (req.session.passport && req.session.passport.user) || null, answer: served});
  });
  app.put('/mine', (req, res) => res.json({ok: true}));
  // The same, fresh for a second and then served stale while it is refreshed, telling whom
  // the app was told about (cachecar's user header).
  app.get('/mine-fresh', (req, res) => {
    served += 1;
    res.set('Cache-Control', 'max-age=1, stale-while-revalidate=60');
    res.json({header: req.get('X-Session-User') || null, answer: served});
  });
  // Writes to the session, so express-session sets the cookie on the answer.
  app.get('/visit', (req, res) => {
    req.session.visits = (req.session.visits || 0) + 1;
    res.json({visits: req.session.visits});
  });
  const server = app.listen(0, '127.0.0.1', () => {
    console.log(`listening on ${server.address().port}`);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
