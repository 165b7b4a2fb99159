"""openapi.json: served as the file in the repository, describing every endpoint,
status and header of the contract, passing Redocly's recommended rules (Redocly CLI,
installed by `make test`), and matching real answers field by field."""

import json
import os
import re
import shutil
import subprocess

from harness import (CLIENT, ISO_WHOLE_Z, ROOT, Redis, Server, parse_responses, path,
                     raw_exchange, wait_until)


def spec():
    with open(os.path.join(ROOT, 'openapi.json'), 'rb') as f:
        return json.loads(f.read())


def resolve(doc, node):
    while isinstance(node, dict) and '$ref' in node:
        assert node['$ref'].startswith('#/'), node
        target = doc
        for part in node['$ref'][2:].split('/'):
            target = target[part]
        node = target
    return node


def test_openapi_json_is_served_as_the_file_in_the_repository():
    with open(os.path.join(ROOT, 'openapi.json'), 'rb') as f:
        on_disk = f.read()
    with Redis() as redis, Server(redis) as server:
        for target in ('/openapi.json', '/openapi.json/'):
            status, headers, body = server.request('GET', target)
            assert status == 200, status
            assert body == on_disk, 'served %s differs from openapi.json (rebuild?)' % target
            assert headers['content-type'].replace(' ', '') == 'application/json;charset=utf-8'
        status, headers, body = server.request('HEAD', '/openapi.json')
        assert status == 200 and body == b'' and headers['content-length'] == str(len(on_disk))
        assert server.request('POST', '/openapi.json')[0] == 405


SPEC_OPERATIONS = {
    ('/upload/', 'post'): {'201', '413', '415', '422', '429', '503', '507'},
    ('/upload/{filename}', 'put'): {'201', '413', '415', '422', '429', '503', '507'},
    ('/{filename}', 'put'): {'201', '413', '415', '422', '429', '503', '507'},
    ('/download/{key}', 'delete'): {'204', '403', '404', '410', '429', '503'},
    ('/preview/{key}', 'get'): {'200', '404', '429', '503'},
    ('/download/{key}', 'get'): {'200', '404', '410', '429', '500', '503'},
    ('/status/{key}', 'get'): {'200', '429', '503'},
    ('/health/', 'get'): {'200', '429', '503'},
    ('/openapi.json', 'get'): {'200'},
    ('/metrics', 'get'): {'200', '403'},
    ('/', 'get'): {'200'},
    ('/assets/{name}', 'get'): {'200', '404'},
}


METHODS = ('get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace')


SPEC_HEADERS = {'X-Request-ID', 'Cache-Control', 'Pragma', 'Expires', 'X-Content-Type-Options',
                'X-Frame-Options', 'X-XSS-Protection', 'Referrer-Policy',
                'Access-Control-Allow-Origin', 'Access-Control-Allow-Methods',
                'Access-Control-Allow-Headers', 'Access-Control-Expose-Headers'}


def test_openapi_describes_every_endpoint_status_and_header_of_the_contract():
    doc = spec()
    assert doc['openapi'].startswith('3.'), doc['openapi']
    try:  # the full OpenAPI 3 schema check, where the machine's Python has the validator
        from openapi_spec_validator import validate
    except ImportError:
        print('openapi-spec-validator not installed: structural checks only')
    else:
        validate(doc)
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if '$ref' in node:
                refs.append(node['$ref'])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)
    for r in refs:
        resolve(doc, {'$ref': r})  # KeyError if dangling
    ids = []
    for (p, method), statuses in SPEC_OPERATIONS.items():
        item = doc['paths'][p]
        assert 'options' in item and '204' in item['options']['responses'], p
        op = item[method]
        assert statuses <= set(op['responses']), (p, method, statuses - set(op['responses']))
        for code, r in op['responses'].items():
            r = resolve(doc, r)
            assert SPEC_HEADERS <= set(r.get('headers', {})), (p, code)
            if code in ('429',):
                assert 'Retry-After' in r['headers'], (p, code)
    for item in doc['paths'].values():
        for m, o in item.items():
            if m in METHODS:
                ids.append(o['operationId'])
    assert len(ids) == len(set(ids)), 'operationIds repeat'
    # What Redocly's rules ask for, checked here too so that a machine without the
    # linter still catches their loss: no authentication said outright, a relative
    # server (each deployment has its own address), a licence, a 4xx on every operation.
    assert doc['security'] == [], doc.get('security')
    assert [s['url'] for s in doc['servers']] == ['/'], doc.get('servers')
    assert doc['info']['license']['name'] and doc['info']['license']['url'], doc['info']
    for p, item in doc['paths'].items():
        for m, op in item.items():
            if m in METHODS:
                assert any(c.startswith('4') for c in op['responses']), (p, m)
    dl = resolve(doc, doc['paths']['/download/{key}']['get']['responses']['200'])
    assert {'Content-Length', 'Content-Disposition', 'X-SHA256', 'Content-Encoding'} <= \
        set(dl['headers'])
    for p in ('/download/{key}', '/preview/{key}'):  # the link previewers' page
        assert 'text/html' in doc['paths'][p]['get']['responses']['200']['content'], p
    for p, m in (('/upload/', 'post'), ('/upload/{filename}', 'put'), ('/{filename}', 'put')):
        assert 'Location' in doc['paths'][p][m]['responses']['201']['headers'], p
        created = resolve(doc, doc['paths'][p][m]['responses']['201']['content']
                          ['application/json']['schema'])
        assert {'share_url', 'delete_url', 'delete_token'} <= set(created['required']), p
    for p in ('/upload/{filename}', '/{filename}'):
        assert 'text/plain' in doc['paths'][p]['put']['responses']['201']['content'], p
        params = {(q['in'], q['name']) for q in doc['paths'][p]['put']['parameters']}
        assert {('query', 'expiry'), ('query', 'uses'), ('header', 'Expiry'),
                ('header', 'Uses')} <= params, params
    form = resolve(doc, doc['paths']['/upload/']['post']['requestBody']['content']
                   ['multipart/form-data']['schema'])
    assert form['properties']['expiry'] == {**form['properties']['expiry'], 'minimum': 1,
                                            'maximum': 60, 'default': 10}
    assert form['properties']['uses'] == {**form['properties']['uses'], 'minimum': 1,
                                          'maximum': 5, 'default': 1}


TYPES = {'string': (str,), 'integer': (int,), 'number': (int, float), 'boolean': (bool,),
         'array': (list,), 'object': (dict,)}


def check_value(doc, schema, value, where):
    schema = resolve(doc, schema)
    if value is None:
        assert schema.get('nullable'), '%s is null, documented as not nullable' % where
        return
    kind = schema.get('type')
    if kind:
        ok = isinstance(value, TYPES[kind]) and not (kind in ('integer', 'number') and
                                                     isinstance(value, bool))
        assert ok, '%s = %r is not a %s' % (where, value, kind)
    if 'enum' in schema:
        assert value in schema['enum'], '%s = %r not in %r' % (where, value, schema['enum'])
    if 'pattern' in schema:
        assert re.search(schema['pattern'], value), '%s = %r does not match %s' % (
            where, value, schema['pattern'])
    if schema.get('format') == 'date-time':
        assert ISO_WHOLE_Z.match(value), '%s = %r is not ISO 8601 Z' % (where, value)
    if 'minimum' in schema:
        assert value >= schema['minimum'], (where, value)
    if 'maximum' in schema:
        assert value <= schema['maximum'], (where, value)
    if kind == 'object' and 'properties' in schema:
        props = schema['properties']
        for name in schema.get('required', []):
            assert name in value, '%s lacks documented field %r: %r' % (where, name, value)
        for name, v in value.items():
            assert name in props, '%s has undocumented field %r' % (where, name)
            check_value(doc, props[name], v, '%s.%s' % (where, name))
    if kind == 'array' and 'items' in schema:
        for i, v in enumerate(value):
            check_value(doc, schema['items'], v, '%s[%d]' % (where, i))


def check_response(doc, template, method, status, headers, body, checked):
    op = doc['paths'][template][method]
    assert str(status) in op['responses'], '%s %s answered %d, not documented' % (
        method.upper(), template, status)
    r = resolve(doc, op['responses'][str(status)])
    for name in r.get('headers', {}):
        if name.lower() not in headers and resolve(doc, r['headers'][name]).get('required') is False:
            continue  # documented as sent with some bodies only (the file, not the link page)
        assert name.lower() in headers, '%s %s %d lacks documented header %s' % (
            method.upper(), template, status, name)
        check_value(doc, resolve(doc, r['headers'][name])['schema'],
                    int(headers[name.lower()]) if resolve(doc, r['headers'][name])['schema']
                    .get('type') == 'integer' else headers[name.lower()],
                    '%s %s %d header %s' % (method.upper(), template, status, name))
    content = r.get('content', {})
    ctype = headers.get('content-type', '').split(';')[0].strip().lower()
    if content and method != 'head':
        assert ctype in content or ('*/*' in content and ctype not in ('application/json', '')), \
            '%s %s %d answered %r, documented %r' % (method.upper(), template, status, ctype,
                                                    sorted(content))
        if ctype == 'application/json':
            check_value(doc, content['application/json']['schema'], json.loads(body),
                        '%s %s %d body' % (method.upper(), template, status))
    else:
        assert not content or method == 'head', (template, status)
    checked.add((template, method, str(status)))


LINT_CLI = os.path.join(ROOT, 'build', 'lint', 'node_modules', '@redocly', 'cli', 'bin',
                        'cli.js')
LINT_CONFIG = os.path.join(ROOT, 'test', 'lint', 'redocly.yaml')


def redocly_lint(doc_path):
    """Redocly CLI on one OpenAPI file with test/lint/redocly.yaml, offline (no telemetry,
    no update check): (exit status, [problems])."""
    node = shutil.which('node')
    assert node and os.path.exists(LINT_CLI), \
        'Redocly CLI is not installed: `make test` installs it (node, npm, build/lint/)'
    env = dict(os.environ, REDOCLY_TELEMETRY='off', REDOCLY_SUPPRESS_UPDATE_NOTICE='true',
               NO_COLOR='1')
    done = subprocess.run([node, LINT_CLI, 'lint', '--config', LINT_CONFIG, '--format', 'json',
                           doc_path], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise AssertionError('redocly lint said:\n%s%s' % (done.stdout, done.stderr)) from None
    return done.returncode, report['problems']


def test_openapi_json_passes_redocly_recommended_rules_but_the_trailing_slash_one():
    status, problems = redocly_lint(os.path.join(ROOT, 'openapi.json'))
    assert status == 0 and problems == [], json.dumps(problems, indent=1)[:4000]
    # The linter and its rules are live: a copy without what they ask for fails on them.
    doc = spec()
    del doc['security'], doc['servers'], doc['info']['license']
    for item in doc['paths'].values():
        for m, op in item.items():
            if m in METHODS:
                op['responses'] = {c: r for c, r in op['responses'].items()
                                   if not c.startswith('4')}
    stripped = path('stripped-openapi.json')
    with open(stripped, 'w') as f:
        json.dump(doc, f)
    status, problems = redocly_lint(stripped)
    rules = {p['ruleId'] for p in problems}
    assert status != 0, problems
    assert {'security-defined', 'no-empty-servers', 'info-license',
            'operation-4xx-response'} <= rules, rules
    assert 'no-path-trailing-slash' not in rules, rules


def test_openapi_matches_real_responses_field_by_field_and_header_by_header():
    doc = spec()
    checked = set()
    env = {'ALLOWED_MIME_TYPES': 'text/plain', 'MAX_FILE_SIZE': '4096',
           'DOWNLOAD_FAIL_LIMIT': '6', 'METRICS_ALLOW': '127.0.0.1/32'}
    redis = Redis()
    with redis, Server(redis, env=env) as server:
        def check(method, target, template, status=None, **kw):
            st, headers, body = server.request(method.upper(), target, **kw)
            if status is not None:
                assert st == status, (method, target, st, body[:300])
            check_response(doc, template, method, st, headers, body, checked)
            return st, headers, body

        def upload(data, **kw):
            st, headers, body = server.upload(data, **kw)
            raw = json.dumps(body).encode()
            check_response(doc, '/upload/', 'post', st, headers, raw, checked)
            return st, body

        st, up = upload(b'hello openapi\n', filename='notes.txt', uses=1, expiry=5)
        assert st == 201, up
        key = up['key']
        assert upload(b'text\n', expiry=99)[0] == 422
        assert upload(b'text\n' * 1000)[0] == 413
        assert upload(b'\x89PNG\r\n\x1a\n' + b'\0' * 64, filename='a.png')[0] == 415
        check('get', '/preview/' + key, '/preview/{key}', 200)
        check('get', '/preview/' + key, '/preview/{key}', 404)
        check('get', '/status/' + key, '/status/{key}', 200)
        check('head', '/status/' + key, '/status/{key}', 200)
        slack = {'User-Agent': 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)'}
        check('get', '/download/' + key, '/download/{key}', 200, headers=slack)
        check('get', '/preview/' + key, '/preview/{key}', 200, headers=slack)
        check('get', '/download/' + key, '/download/{key}', 200)
        check('get', '/download/' + key, '/download/{key}', 410)
        # PUT: the lines for a terminal, the JSON on request, and every error.
        for template in ('/{filename}', '/upload/{filename}'):
            target = template.replace('{filename}', 'notes.txt')
            check('put', target + '?uses=2', template, 201, body=b'put notes\n')
            st, _, body = check('put', target, template, 201, body=b'put notes\n',
                                headers={'Accept': 'application/json'})
            put = json.loads(body)
            check('put', target, template, 413, body=b'text\n' * 1000)
            check('put', target, template, 415, body=b'\x89PNG\r\n\x1a\n' + b'\0' * 64)
            check('put', target + '?expiry=99', template, 422, body=b'text\n')
            check('put', target, template, 422, body=b'text\n', headers={'Uses': 'x'})
        # DELETE, from a client of its own: the failures count toward its block.
        other = '127.0.0.3'
        check('delete', '/download/' + put['key'], '/download/{key}', 403, source_address=other)
        check('delete', '/download/apple-banana-cherry', '/download/{key}', 404,
              source_address=other)
        token = {'X-Delete-Token': put['delete_token']}
        check('delete', '/download/' + put['key'], '/download/{key}', 204, headers=token)
        check('delete', '/download/' + put['key'], '/download/{key}', 410, headers=token)
        check('get', '/health/', '/health/', 200)
        check('head', '/health/', '/health/', 200)
        check('get', '/openapi.json', '/openapi.json', 200)
        check('get', '/metrics', '/metrics', 200)
        check('get', '/metrics', '/metrics', 403, source_address='127.0.0.2')
        for method in ('get', 'head'):
            _, headers, _ = check(method, '/', '/', 200)
            assert 'content-security-policy' in headers, headers
            for name in ('drop.css', 'drop.js', 'icon.svg'):
                check(method, '/assets/' + name, '/assets/{name}', 200)
            check(method, '/assets/nothing.js', '/assets/{name}', 404)
        for template, target in (('/upload/', '/upload/'), ('/{filename}', '/notes.txt'),
                                 ('/upload/{filename}', '/upload/notes.txt'),
                                 ('/preview/{key}', '/preview/' + key),
                                 ('/download/{key}', '/download/' + key),
                                 ('/status/{key}', '/status/' + key), ('/health/', '/health/'),
                                 ('/openapi.json', '/openapi.json'), ('/metrics', '/metrics'),
                                 ('/', '/'), ('/assets/{name}', '/assets/drop.js')):
            check('options', target, template, 204)
        def check_framing(method, target, template):
            """Two Content-Lengths, which no HTTP client library sends: a raw request."""
            received, _ = raw_exchange(server, b'%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n'
                                       b'Content-Length: 0\r\n\r\n'
                                       % (method.upper().encode(), target.encode()))
            (st, headers, body), = parse_responses(received)
            assert st == 400, (method, target, st, body[:300])
            check_response(doc, template, method, st, headers, body, checked)

        # Every operation refuses an oversized request head, or ambiguous framing, before
        # anything else.
        long_query = '?' + 'q' * 8200  # over MAX_REQUEST_LINE (8192)
        big_header = {'X-Padding': 'p' * 33000}  # over MAX_HEADER_BYTES (32768)
        for template, item in doc['paths'].items():
            target = (template.replace('{key}', key).replace('{filename}', 'notes.txt')
                      .replace('{name}', 'drop.js'))
            for method in item:
                if method in METHODS:
                    check(method, target + long_query, template, 414)
                    check(method, target, template, 431, headers=big_header)
                    check_framing(method, target, template)
        # Unknown keys: status answers 200 with nulls, the others 404, then all 429.
        check('get', '/status/apple-banana-cherry', '/status/{key}', 200)
        check('get', '/download/apple-banana-cherry', '/download/{key}', 404)
        check('get', '/preview/apple-banana-cherry', '/preview/{key}', 404)
        for _ in range(3):
            server.request('GET', '/status/apple-banana-cherry')
        for template in ('/status/{key}', '/download/{key}', '/preview/{key}'):
            check('get', template.replace('{key}', 'apple-banana-cherry'), template, 429)
        check('delete', '/download/apple-banana-cherry', '/download/{key}', 429)
        redis.stop()
        wait_until(lambda: server.request('GET', '/health/')[0] == 503, 5,
                   message='health 503 with the store down')
        check('get', '/health/', '/health/', 503)
        check('head', '/health/', '/health/', 503)
        for template in ('/status/{key}', '/download/{key}', '/preview/{key}'):
            check('get', template.replace('{key}', 'apple-banana-cherry'), template, 503)
        check('head', '/status/apple-banana-cherry', '/status/{key}', 503)
        check('delete', '/download/apple-banana-cherry', '/download/{key}', 503,
              source_address='127.0.0.4')
        for template in ('/{filename}', '/upload/{filename}'):
            check('put', template.replace('{filename}', 'down.txt'), template, 503,
                  body=b'store is down\n')
        assert upload(b'store is down\n')[0] == 503
    with Redis() as redis, Server(redis, env={'UPLOAD_RATE_LIMIT': '1/hour',
                                              'HEALTH_RATE_LIMIT': '1/hour'}) as server:
        # The host's own probe (wait_ready's) is never limited; a client's second is.
        assert server.request('GET', '/health/', source_address=CLIENT)[0] == 200
        st, headers, body = server.request('GET', '/health/', source_address=CLIENT)
        assert st == 429, st
        check_response(doc, '/health/', 'get', st, headers, body, checked)
        assert server.upload(b'one')[0] == 201
        st, headers, body = server.upload(b'two')
        assert st == 429, body
        check_response(doc, '/upload/', 'post', st, headers, json.dumps(body).encode(), checked)
        for template in ('/{filename}', '/upload/{filename}'):
            st, headers, body = server.request('PUT', template.replace('{filename}', 'three.txt'),
                                               body=b'three\n')
            assert st == 429, body
            check_response(doc, template, 'put', st, headers, body, checked)
    # Not provoked here: 500 (integrity failure, internal error) and 507 (disk full),
    # which other tests cover for behaviour; 408, an HTTP/2 answer only, whose status
    # and body test_body_limits checks.
    documented = {(p, m, c) for p, item in doc['paths'].items() for m, op in item.items()
                  if m in METHODS for c in op['responses']}
    missing = documented - checked - {('/upload/', 'post', '500'), ('/upload/', 'post', '507'),
                                      ('/{filename}', 'put', '500'), ('/{filename}', 'put', '507'),
                                      ('/upload/{filename}', 'put', '500'),
                                      ('/upload/{filename}', 'put', '507'),
                                      ('/upload/', 'post', '408'),
                                      ('/{filename}', 'put', '408'), ('/upload/{filename}', 'put', '408'),
                                      ('/download/{key}', 'get', '500'),
                                      ('/status/{key}', 'head', '429'),
                                      ('/health/', 'head', '429')}
    assert not missing, 'documented but never checked: %r' % sorted(missing)
