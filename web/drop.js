/* drop.js - the drop page: send a file (drop zone, progress, every error in words, then
 * the words, the share link and "Delete now") and receive one (the fetch view of
 * /#apple-banana-cherry). The words live in the URL's fragment and in this page's memory
 * only: they reach the server only as the path of an API call, never in a log line,
 * a referrer or any storage. */
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const MIB = 1048576;
  const FIELDS = { file: 'File', expiry: 'Expires after', uses: 'Downloads allowed' };
  const FIELD_INPUTS = { expiry: 'expiry', uses: 'uses' };

  /* ---- words in, words out ---- */

  /* The key in what a person typed or pasted: words separated by spaces, hyphens or
   * dashes, any case, or a whole share or download link. null unless at least three
   * words of letters only (the server judges the rest). */
  function keyOf(text) {
    let s = String(text).trim();
    const hash = s.lastIndexOf('#');
    if (hash >= 0) {
      s = s.slice(hash + 1);
    } else if (s.indexOf('/') >= 0) {
      s = s.split('/').filter(Boolean).pop() || '';
    }
    try {
      s = decodeURIComponent(s);
    } catch (e) {
      return null;
    }
    const words = s.toLowerCase().split(/[\s\-\u2010-\u2015\u2212_.,;:+]+/).filter(Boolean);
    if (words.length < 3 || !words.every((w) => /^[a-z]+$/.test(w))) {
      return null;
    }
    return words.join('-');
  }

  /* ---- numbers for people ---- */

  function bytes(n) {
    if (n < 1024) {
      return n + (n === 1 ? ' byte' : ' bytes');
    }
    const units = ['KB', 'MB', 'GB', 'TB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (v < 10 ? v.toFixed(1) : String(Math.round(v))) + ' ' + units[i];
  }

  function megabytes(n) {
    const mb = n / MIB;
    return (mb >= 1 ? String(Math.round(mb * 10) / 10) : String(Number(mb.toPrecision(2)))) + ' MB';
  }

  /* 75 -> "1:15", 3725 -> "1:02:05" */
  function clock(seconds) {
    const t = Math.max(0, Math.ceil(seconds));
    const two = (x) => (x < 10 ? '0' : '') + x;
    const h = Math.floor(t / 3600);
    const m = Math.floor((t % 3600) / 60);
    return (h ? h + ':' + two(m) : String(m)) + ':' + two(t % 60);
  }

  function localTime(ms) {
    const d = new Date(ms);
    if (d.toDateString() === new Date().toDateString()) {
      return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  /* ---- time: one ticker for every countdown, immune to the visitor's clock ---- */

  const tickers = new Set();
  let ticking = 0;

  function tick() {
    tickers.forEach((t) => t.step());
    if (tickers.size === 0) {
      clearInterval(ticking);
      ticking = 0;
    }
  }

  /* Call show(seconds left) now and every second until the end, then end(). A deadline
   * is a monotonic instant, so a clock change on the visitor's machine cannot move it.
   * Returns a function that stops it. */
  function countdown(seconds, show, end) {
    const until = performance.now() + seconds * 1000;
    const t = {
      step() {
        const left = (until - performance.now()) / 1000;
        if (left <= 0) {
          tickers.delete(t);
          end();
        } else {
          show(left);
        }
      },
    };
    tickers.add(t);
    t.step();
    if (!ticking && tickers.size) {
      ticking = setInterval(tick, 1000);
    }
    return () => tickers.delete(t);
  }

  /* ---- the API ---- */

  /* One request. Resolves (never rejects) to what happened: kind 'answer' (with status,
   * parsed JSON body or null, Retry-After, and the server's clock from its Date header),
   * 'network' or 'abort'. Paths are relative, so the page also works under a prefix. */
  function call(method, path, options) {
    const o = options || {};
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, path);
      xhr.setRequestHeader('Accept', 'application/json');
      Object.keys(o.headers || {}).forEach((k) => xhr.setRequestHeader(k, o.headers[k]));
      if (o.progress) {
        xhr.upload.addEventListener('progress', o.progress);
      }
      if (o.sent) {
        xhr.upload.addEventListener('load', o.sent);
      }
      const settle = (kind) => () => resolve(outcome(xhr, kind));
      xhr.addEventListener('load', settle('answer'));
      xhr.addEventListener('error', settle('network'));
      xhr.addEventListener('timeout', settle('network'));
      xhr.addEventListener('abort', settle('abort'));
      if (o.started) {
        o.started(xhr);
      }
      xhr.send(o.body === undefined ? null : o.body);
    });
  }

  function outcome(xhr, kind) {
    const a = { kind: kind, status: 0, body: null, retryAfter: 0, serverNow: Date.now() };
    if (kind !== 'answer') {
      return a;
    }
    a.status = xhr.status;
    try {
      a.body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
    } catch (e) {
      a.body = null;
    }
    const date = Date.parse(xhr.getResponseHeader('Date') || '');
    if (!isNaN(date)) {
      a.serverNow = date;
    }
    const retry = parseInt(xhr.getResponseHeader('Retry-After') || '', 10);
    a.retryAfter = retry > 0 ? retry : 0;
    return a;
  }

  function detailOf(a) {
    const d = a.body && a.body.detail;
    if (typeof d === 'string') {
      return d;
    }
    if (d && typeof d === 'object' && !Array.isArray(d)) {
      return String(d.error || '');
    }
    return '';
  }

  /* Seconds until a deadline the server gave (ISO 8601), measured on the server's clock. */
  function secondsUntil(iso, a) {
    return (Date.parse(iso) - a.serverNow) / 1000;
  }

  /* ---- messages ---- */

  /* What went wrong, in words: { text, wait } where wait > 0 means "try again in"
   * (text then ends where the countdown goes). what: 'upload', 'status', 'details' or
   * 'delete'. */
  function problem(a, what) {
    const detail = detailOf(a);
    if (a.kind === 'abort') {
      return {
        text: a.allSent
          ? 'Upload cancelled after the whole file was sent. If the server stored it anyway, nobody has its words, and it is shredded at its deadline.'
          : 'Upload cancelled. Nothing was stored.',
      };
    }
    if (a.kind === 'network') {
      return {
        text: 'The connection to the server failed' +
          (what === 'upload' ? ' before the upload finished' : '') +
          '. Check your network connection and try again.',
      };
    }
    switch (a.status) {
      case 413: {
        const max = /Max Size: (\d+) bytes/.exec(detail);
        if (!max) {
          return { text: 'This file is too large for this server.' };
        }
        const n = Number(max[1]);
        return {
          text: 'This file' + (a.fileSize ? ' (' + bytes(a.fileSize) + ')' : '') +
            ' is too large: this server takes files up to ' + megabytes(n) + ' (' + n.toLocaleString('en') + ' bytes).',
        };
      }
      case 415: {
        const type = /File type not supported: (.*)$/.exec(detail);
        return {
          text: 'This server does not accept files of this type' + (type ? ' (' + type[1] + ')' : '') +
            '. Send another kind of file, or ask its administrator.',
        };
      }
      case 422:
        return { text: 'The server refused the form. ' + formProblems(a.body && a.body.detail) };
      case 429:
        return {
          text: what === 'upload'
            ? (detail === 'Too many uploads in progress'
              ? 'Too many uploads from your address are in progress at once. Try again in '
              : 'Too many uploads from your address: this server limits how often one may upload. Try again in ')
            : 'Too many unknown words were tried from your address, so it is blocked for a while. Try again in ',
          wait: a.retryAfter || 1,
        };
      case 503:
        return { text: 'The server cannot reach its database right now (service temporarily unavailable). Try again in a minute.' };
      case 507:
        return { text: 'The server has no room to store this file right now (insufficient storage). Try again later, or send a smaller file.' };
      case 500:
        return { text: 'The server failed (internal error). Try again later.' };
      default:
        return { text: 'The server answered ' + a.status + (detail ? ': ' + detail : '') + '.' };
    }
  }

  function formProblems(detail) {
    if (!Array.isArray(detail)) {
      return typeof detail === 'string' ? detail : '';
    }
    return detail.map((item) => {
      const loc = Array.isArray(item.loc) ? item.loc[item.loc.length - 1] : '';
      if (FIELD_INPUTS[loc]) {
        $(FIELD_INPUTS[loc]).setAttribute('aria-invalid', 'true');
      }
      return (FIELDS[loc] || 'The form') + ': ' + item.msg + '.';
    }).join(' ');
  }

  /* Put a message in a live region; with a wait, a countdown follows it. The region
   * announces the sentence once; the ticking clock is not announced every second, and
   * the end is (then() runs at the end). */
  const waits = new Map();

  function say(region, text, wait, then) {
    const stop = waits.get(region);
    if (stop) {
      stop();
      waits.delete(region);
    }
    if (!wait) {
      region.textContent = text;
      return;
    }
    const time = document.createElement('span');
    time.className = 'countdown';
    time.setAttribute('aria-live', 'off');
    region.replaceChildren(text, time, '.');
    waits.set(region, countdown(wait, (left) => {
      time.textContent = clock(left);
    }, () => {
      waits.delete(region);
      region.textContent = 'You can try again now.';
      if (then) {
        then();
      }
    }));
  }

  function report(region, a, what, then) {
    const p = problem(a, what);
    say(region, p.text, p.wait, then);
  }

  /* ---- views ---- */

  const views = { drop: $('drop-view'), result: $('result-view'), fetch: $('fetch-view') };

  function show(name, focus) {
    Object.keys(views).forEach((k) => {
      views[k].hidden = k !== name;
    });
    $('words-view').hidden = name === 'result';
    if (focus) {
      views[name].querySelector('h1').focus();
    }
  }

  /* ---- copying ---- */

  function copy(text, news) {
    const done = () => {
      news.textContent = 'Copied to the clipboard.';
    };
    const fallback = () => {
      const area = document.createElement('textarea');
      area.value = text;
      area.setAttribute('readonly', '');
      area.className = 'offscreen';
      document.body.append(area);
      area.select();
      let ok = false;
      try {
        ok = document.execCommand('copy');
      } catch (e) {
        ok = false;
      }
      area.remove();
      if (ok) {
        done();
      } else {
        news.textContent = 'This browser did not let the page copy: select the text and copy it yourself.';
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else {
      fallback();
    }
  }

  /* ---- sending ---- */

  const send = { file: null, xhr: null };

  function pick(file, extra) {
    send.file = file;
    $('zone-text').textContent = file.name;
    $('zone-sub').textContent = bytes(file.size) + (extra ? ' (' + extra + ')' : '') + ' · press to choose another';
    $('zone').classList.add('chosen');
    say($('send-error'), '');
  }

  function fieldValue(id, min, max, errors) {
    const input = $(id);
    const v = input.value.trim();
    const ok = /^\d+$/.test(v) && Number(v) >= min && Number(v) <= max;
    input.setAttribute('aria-invalid', ok ? 'false' : 'true');
    if (!ok) {
      errors.push({ input: input, text: FIELDS[id] + ' must be a whole number from ' + min + ' to ' + max + '.' });
    }
    return v;
  }

  function setBusy(busy) {
    ['zone', 'expiry', 'uses', 'upload'].forEach((id) => {
      $(id).disabled = busy;
    });
    $('progress').hidden = !busy;
  }

  function startUpload(event) {
    event.preventDefault();
    if (send.xhr) {
      return;
    }
    const errors = [];
    const expiry = fieldValue('expiry', 1, 60, errors);
    const uses = fieldValue('uses', 1, 5, errors);
    if (!send.file) {
      errors.unshift({ input: $('zone'), text: 'Choose a file first: drop it on the box, or press the box to pick one.' });
    }
    if (errors.length) {
      say($('send-error'), errors.map((e) => e.text).join(' '));
      errors[0].input.focus();
      return;
    }
    const file = send.file;
    const form = new FormData();
    form.append('expiry', expiry);
    form.append('uses', uses);
    form.append('file', file, file.name);

    say($('send-error'), '');
    $('progress-label').textContent = 'Uploading ' + file.name;
    $('bar').value = 0;
    $('progress-text').textContent = 'Starting…';
    $('progress-news').textContent = 'Upload started.';
    setBusy(true);
    $('cancel').focus();

    const began = performance.now();
    const samples = [];
    let announced = 0;
    let allSent = false;
    call('POST', 'upload/', {
      body: form,
      started(xhr) {
        send.xhr = xhr;
      },
      progress(e) {
        const now = performance.now();
        const total = e.lengthComputable ? e.total : 0;
        samples.push([now, e.loaded]);
        while (samples.length > 2 && now - samples[0][0] > 3000) {
          samples.shift();
        }
        const [t0, b0] = samples.length > 1 ? samples[0] : [began, 0];
        const speed = now > t0 ? ((e.loaded - b0) * 1000) / (now - t0) : 0;
        const sent = Math.min(e.loaded, file.size);
        const parts = [];
        if (total) {
          const pct = Math.floor((e.loaded * 100) / total);
          $('bar').value = pct;
          parts.push(pct + '%');
          if (pct >= announced + 25) {
            announced = pct - (pct % 25);
            $('progress-news').textContent = announced + '% sent.';
          }
        } else {
          $('bar').removeAttribute('value');
        }
        parts.push(bytes(sent) + ' of ' + bytes(file.size));
        if (speed > 0) {
          parts.push(bytes(Math.round(speed)) + '/s');
          if (total && e.loaded < total) {
            parts.push('about ' + clock((total - e.loaded) / speed) + ' left');
          }
        }
        $('progress-text').textContent = parts.join(' · ');
      },
      sent() {
        allSent = true;
        $('bar').value = 100;
        $('progress-text').textContent = '100% · ' + bytes(file.size) + ' sent · the server is encrypting and storing it…';
        $('progress-news').textContent = 'All sent. The server is encrypting and storing it.';
      },
    }).then((a) => {
      send.xhr = null;
      setBusy(false);
      if (a.kind === 'answer' && a.status === 201 && a.body && a.body.key) {
        $('progress-news').textContent = '';
        showResult(a);
        return;
      }
      $('progress-news').textContent = '';
      a.allSent = allSent;
      a.fileSize = file.size;
      report($('send-error'), a, 'upload');
      $('upload').focus();
    });
  }

  function cancelUpload() {
    if (send.xhr) {
      send.xhr.abort();
    }
  }

  /* ---- the result ---- */

  const result = { key: '', token: '', stopCountdown: null, poll: 0, deleting: false };

  function showResult(a) {
    const r = a.body;
    result.key = r.key;
    result.token = r.delete_token;
    $('key').textContent = r.key;
    $('share').value = r.share_url;
    $('r-file').textContent = r.filename + ' · ' + bytes(r.size);
    $('r-sha').textContent = r.sha256;
    $('r-uses').textContent = plural(r.uses, 'download', 'downloads');
    $('delete').hidden = false;
    $('delete-confirm').hidden = true;
    say($('result-news'), '');
    say($('result-error'), '');
    $('copy-news').textContent = '';
    expires($('r-expires'), secondsUntil(r.expiry, a), () => {
      finish('Expired: the file has been shredded.');
    }, (stop) => {
      result.stopCountdown = stop;
    });
    show('result', true);
    clearInterval(result.poll);
    result.poll = setInterval(refreshResult, 10000);
  }

  /* "at 14:32 (in 9:58)", ticking; when it runs out, end(). */
  function expires(dd, seconds, end, keep) {
    const at = document.createElement('time');
    at.dateTime = new Date(Date.now() + seconds * 1000).toISOString();
    at.textContent = localTime(Date.now() + seconds * 1000);
    const left = document.createElement('span');
    dd.replaceChildren('at ', at, ' your time (in ', left, ')');
    keep(countdown(seconds, (s) => {
      left.textContent = clock(s);
    }, () => {
      dd.textContent = 'Expired';
      end();
    }));
  }

  function finish(text) {
    clearInterval(result.poll);
    result.poll = 0;
    if (result.stopCountdown) {
      result.stopCountdown();
    }
    $('r-uses').textContent = 'none';
    $('delete').hidden = true;
    $('delete-confirm').hidden = true;
    say($('result-news'), text);
  }

  /* While the page is open, and whenever the sender comes back to it, the sender sees
   * downloads happen (status never spends). */
  function refreshResult() {
    if (document.hidden || !result.poll) {
      return;
    }
    call('GET', 'status/' + encodeURIComponent(result.key)).then((a) => {
      if (a.kind !== 'answer' || a.status !== 200 || !a.body || !result.poll) {
        return;
      }
      if (a.body.status === 'active') {
        $('r-uses').textContent = plural(a.body.remaining_uses, 'download', 'downloads');
      } else {
        finish(a.body.status === 'burned'
          ? 'Downloaded as many times as allowed: the file is gone from the server.'
          : 'The file has expired and is gone from the server.');
      }
    });
  }

  function askDelete() {
    $('delete-confirm').hidden = false;
    $('delete-no').focus();
  }

  function keepIt() {
    $('delete-confirm').hidden = true;
    $('delete').focus();
  }

  function deleteNow() {
    if (result.deleting) {
      return;
    }
    result.deleting = true;
    call('DELETE', 'download/' + encodeURIComponent(result.key), {
      headers: { 'X-Delete-Token': result.token },
    }).then((a) => {
      result.deleting = false;
      if (a.kind === 'answer' && a.status === 204) {
        finish('Deleted. The file is gone: the words and the link no longer work.');
        $('result-title').focus();
      } else if (a.kind === 'answer' && (a.status === 404 || a.status === 410)) {
        finish('Already gone: the file had expired or been downloaded as many times as allowed.');
        $('result-title').focus();
      } else if (a.kind === 'answer' && a.status === 403) {
        say($('result-error'), 'The server refused this page\'s delete token (403), so the file was not deleted.');
      } else {
        report($('result-error'), a, 'delete');
      }
    });
  }

  /* ---- receiving ---- */

  const fetching = { key: '', stopCountdown: null, remaining: -1, started: false };

  function openKey(key, focus) {
    fetching.key = key;
    fetching.remaining = -1;
    fetching.started = false;
    $('f-key').textContent = key || '';
    $('details-list').hidden = true;
    $('details-warning').hidden = false;
    $('details').textContent = 'Show details — once only';
    $('details').setAttribute('aria-disabled', 'false');
    say($('fetch-error'), '');
    show('fetch', focus);
    if (!key) {
      setState('This link does not end with words such as apple-banana-cherry. Check the link, or type the words below.');
      return;
    }
    checkStatus();
  }

  function setState(text, active) {
    $('f-state').textContent = text;
    $('f-facts').hidden = !active;
    $('f-actions').hidden = !active;
    if (!active && fetching.stopCountdown) {
      fetching.stopCountdown();
      fetching.stopCountdown = null;
    }
  }

  function checkStatus(after) {
    $('recheck-row').hidden = true;
    if (!after) {
      setState('Checking…');
    }
    const key = fetching.key;
    call('GET', 'status/' + encodeURIComponent(key)).then((a) => {
      if (key !== fetching.key) {
        return;
      }
      fetching.started = false;
      if (a.kind !== 'answer' || a.status !== 200 || !a.body) {
        setState('');
        if (a.status !== 429) {
          $('recheck-row').hidden = false;
        }
        report($('fetch-error'), a, 'status', () => checkStatus());
        return;
      }
      say($('fetch-error'), '');
      const s = a.body;
      const before = fetching.remaining;
      fetching.remaining = s.is_accessible ? s.remaining_uses : 0;
      if (s.status === 'active' && s.is_accessible) {
        setState(after ? 'Your browser is saving the file. ' + plural(s.remaining_uses, 'download is', 'downloads are') + ' left.' : 'Ready to download.', true);
        $('f-uses').textContent = String(s.remaining_uses);
        if (fetching.stopCountdown) {
          fetching.stopCountdown();
        }
        expires($('f-expires'), secondsUntil(s.expires_at, a), () => {
          setState('This file has expired: it was shredded at its deadline.');
        }, (stop) => {
          fetching.stopCountdown = stop;
        });
        if (after && s.remaining_uses === before && after < 3) {
          setTimeout(() => checkStatus(after + 1), 1000 * after);
        }
      } else if (s.status === 'burned') {
        setState(after
          ? 'Your browser is saving the file. That was the last download: the file is now gone from the server.'
          : 'This file is gone: it was downloaded as many times as allowed, or deleted by its sender.');
      } else if (s.status === 'expired') {
        setState('This file has expired: it was shredded at its deadline.');
      } else {
        setState('Nothing found for these words. They may be mistyped, or the file has expired or been downloaded already.');
      }
    });
  }

  /* The browser's own download: it streams to disk whatever the size, under the name
   * the server gives, and the page stays. The click is what spends a use. */
  function download() {
    if (fetching.started) {
      return; /* a second click before the page knows what the first one spent */
    }
    fetching.started = true;
    const a = document.createElement('a');
    a.href = 'download/' + encodeURIComponent(fetching.key);
    a.download = '';
    document.body.append(a);
    a.click();
    a.remove();
    setState('Download started: your browser is saving the file…', true);
    setTimeout(() => checkStatus(1), 1000);
  }

  /* The button stays focusable once used (aria-disabled), so focus is not lost. */
  function showDetails() {
    const button = $('details');
    if (button.getAttribute('aria-disabled') === 'true') {
      return;
    }
    button.setAttribute('aria-disabled', 'true');
    call('GET', 'preview/' + encodeURIComponent(fetching.key)).then((a) => {
      if (a.kind === 'answer' && a.status === 200 && a.body) {
        const p = a.body;
        $('d-name').textContent = p.filename;
        $('d-size').textContent = bytes(p.size) +
          (p.size >= 1024 ? ' (' + Number(p.size).toLocaleString('en') + ' bytes)' : '');
        $('d-type').textContent = p.mime_type;
        $('d-sha').textContent = p.sha256;
        $('details-list').hidden = false;
        $('details-warning').hidden = true;
        $('details').textContent = 'Details shown (once only)';
        return;
      }
      if (a.kind === 'answer' && a.status === 404) {
        say($('fetch-error'), /already/i.test(detailOf(a))
          ? 'The details were already shown once, to you or to someone else holding these words: they cannot be shown again.'
          : 'Nothing found for these words: the file may have expired or been downloaded already.');
        return;
      }
      button.setAttribute('aria-disabled', 'false');
      report($('fetch-error'), a, 'details');
    });
  }

  /* ---- wiring ---- */

  function route(focus) {
    const raw = location.hash.slice(1);
    if (!raw) {
      show('drop', focus);
      return;
    }
    const key = keyOf(raw);
    if (key && key !== raw) {
      history.replaceState(null, '', '#' + key);
    }
    openKey(key, focus);
  }

  function typedWords(event) {
    event.preventDefault();
    const input = $('words');
    const key = keyOf(input.value);
    if (!key) {
      input.setAttribute('aria-invalid', 'true');
      say($('words-error'), 'Type at least three words, letters only, with spaces or hyphens between them.');
      input.focus();
      return;
    }
    input.setAttribute('aria-invalid', 'false');
    say($('words-error'), '');
    input.value = '';
    if (location.hash === '#' + key) {
      openKey(key, true);
    } else {
      location.hash = key; /* hashchange opens it */
    }
  }

  function dropped(event) {
    event.preventDefault();
    $('zone').classList.remove('over');
    if (views.drop.hidden || send.xhr) {
      return;
    }
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) {
      pick(files[0], files.length > 1 ? 'one file at a time: the first of ' + files.length : '');
      $('upload').focus();
    }
  }

  $('zone').addEventListener('click', () => $('file').click());
  $('file').addEventListener('change', () => {
    if ($('file').files.length) {
      pick($('file').files[0]);
    }
  });
  /* A file dropped anywhere is taken (not opened by the browser in place of the page). */
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    if (!views.drop.hidden) {
      $('zone').classList.add('over');
    }
  });
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) {
      $('zone').classList.remove('over');
    }
  });
  document.addEventListener('drop', dropped);
  $('send-form').addEventListener('submit', startUpload);
  $('cancel').addEventListener('click', cancelUpload);
  $('copy-key').addEventListener('click', () => copy(result.key, $('copy-news')));
  $('copy-share').addEventListener('click', () => copy($('share').value, $('copy-news')));
  $('share').addEventListener('focus', () => $('share').select());
  $('delete').addEventListener('click', askDelete);
  $('delete-no').addEventListener('click', keepIt);
  $('delete-yes').addEventListener('click', deleteNow);
  $('download').addEventListener('click', download);
  $('details').addEventListener('click', showDetails);
  $('recheck').addEventListener('click', () => checkStatus());
  $('words-form').addEventListener('submit', typedWords);
  window.addEventListener('hashchange', () => route(true));
  window.addEventListener('focus', refreshResult);
  document.addEventListener('visibilitychange', refreshResult);
  route(false);
})();
