// The session table's ordering and formatting for the admin page (admin.js draws the table):
// sorting by any column, short ids, local times with the UTC value on hover. Plain script
// (the page's Content-Security-Policy allows only its own files), exposed as window.sgTable.
'use strict';

(() => {
  const text = (v) => (v === null || v === undefined ? '' : String(v));
  const time = (iso) => (iso ? Date.parse(iso) : Number.POSITIVE_INFINITY);

  // What each sortable column sorts by ("Ends in": the deadline; none = never, last).
  const KEYS = {
    id: (s) => s.id,
    user: (s) => text(s.user),
    client_ip: (s) => text(s.client_ip),
    protocol: (s) => text(s.protocol),
    user_agent: (s) => text(s.user_agent),
    state: (s) => s.state,
    created: (s) => time(s.created_at),
    ends: (s) => time(s.expires_at),
  };

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  const compare = (a, b) => (typeof a === 'number' ? (a < b ? -1 : a > b ? 1 : 0) : collator.compare(a, b));

  // Newest first, then by id: the order every sort starts from, so equal keys keep it (the
  // sort is stable) and a refresh does not shuffle them.
  const newestFirst = (a, b) => compare(KEYS.created(b), KEYS.created(a)) || compare(a.id, b.id);

  /** The sessions sorted by column `key`, 'ascending' or 'descending'; a new array. */
  function sortSessions(sessions, key, dir) {
    const by = KEYS[key] || KEYS.created;
    const sign = dir === 'descending' ? -1 : 1;
    return [...sessions].sort(newestFirst).sort((a, b) => sign * compare(by(a), by(b)));
  }

  /** "2026-03-01 10:08:20 UTC" */
  function utc(iso) {
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  }

  /** A <time> showing the reader's local date and time, with the UTC value as its title. */
  function timeElement(iso) {
    const el = document.createElement('time');
    el.dateTime = iso;
    el.title = utc(iso);
    el.textContent = new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
    return el;
  }

  /** The first 8 characters of a session id: enough to tell the rows apart. */
  const shortId = (id) => id.slice(0, 8);

  window.sgTable = { sortSessions, timeElement, shortId, utc, columns: Object.keys(KEYS) };
})();
