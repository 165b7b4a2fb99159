"""HTTP/1 framing that a proxy in front could read another way (RFC 9112 §6.3, §5.2,
§2.2): two Content-Lengths, Content-Length with Transfer-Encoding, a doubled coding,
folded lines, bare LFs. Each gets 400 (JSON) and the connection closed, and a request
pipelined behind it is never answered: what follows an ambiguous request is never
taken for a request (request smuggling). Written on raw sockets, since no HTTP client
library sends such requests."""

from harness import (Redis, Server, assert_json_error, assert_nobody_replaced,
                     assert_nothing_left, multipart, parse_responses, raw_exchange)

# Behind each case: a request that only the trusted loopback may make, as an attacker
# would smuggle it past a proxy that guards /metrics.
SMUGGLED = b'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'


def upload(framing, body, version=b'HTTP/1.1'):
    _, ctype = multipart(b'x')
    return (b'POST /upload/ ' + version + b'\r\nHost: x\r\nContent-Type: ' + ctype.encode()
            + b'\r\n' + framing + b'\r\n' + body)


CHUNKED_BODY = b'5\r\nhello\r\n0\r\n\r\n'
CASES = {
    'two different Content-Lengths, the shorter first':
        upload(b'Content-Length: 5\r\nContent-Length: 40\r\n', b'hello'),
    # libh2o reads the first length: 5 bytes, the smuggled request and a pad byte.
    'two different Content-Lengths, the longer first':
        upload(b'Content-Length: 40\r\nContent-Length: 5\r\n', b'hello') + SMUGGLED + b'-',
    'two equal Content-Lengths':
        upload(b'Content-Length: 5\r\nContent-Length: 5\r\n', b'hello'),
    'a list of Content-Lengths': upload(b'Content-Length: 5, 5\r\n', b'hello'),
    'Content-Length, then Transfer-Encoding':
        upload(b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n', CHUNKED_BODY),
    'Transfer-Encoding, then Content-Length':
        upload(b'Transfer-Encoding: chunked\r\nContent-Length: 30\r\n', CHUNKED_BODY),
    'Transfer-Encoding: chunked, chunked':
        upload(b'Transfer-Encoding: chunked, chunked\r\n', CHUNKED_BODY),
    'Transfer-Encoding twice':
        upload(b'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', CHUNKED_BODY),
    'Transfer-Encoding in HTTP/1.0':
        upload(b'Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n', CHUNKED_BODY,
               version=b'HTTP/1.0'),
    'a folded Transfer-Encoding':
        upload(b'Content-Length: 5\r\nX-Pad: a\r\n Transfer-Encoding: chunked\r\n', b'hello'),
    'a folded header line': b'GET /health/ HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tmore\r\n\r\n',
    'bare LFs throughout': b'GET /health/ HTTP/1.1\nHost: x\n\n',
    'one bare LF': b'GET /health/ HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n',
    'a bare LF ending the head': b'GET /health/ HTTP/1.1\r\nHost: x\r\n\n',
}


def test_ambiguous_framing_gets_400_and_a_close_and_nothing_pipelined_behind_it_is_answered():
    with Redis() as redis, Server(redis) as server:
        before = server.full_tree()
        failures = []
        for what, data in CASES.items():
            received, end = raw_exchange(server, data + SMUGGLED, timeout=5)
            try:
                assert end in ('closed', 'reset'), 'the connection was kept open (%s)' % end
                responses = parse_responses(received)
                assert len(responses) == 1, '%d answers: %r' % (
                    len(responses), [r[0] for r in responses])
                status, headers, body = responses[0]
                assert headers.get('connection') == 'close', headers.get('connection')
                assert_json_error(status, headers, body, 400, what=what)
            except AssertionError as e:
                failures.append('%s: %s' % (what, e))
        assert not failures, '\n'.join(failures)
        assert_nothing_left(server, redis, 'ambiguous uploads')
        assert_nobody_replaced(server, before)


def test_a_body_shorter_than_the_first_length_is_awaited_and_nothing_after_it_answered():
    # A proxy that believed the second length has sent everything; libh2o waits for
    # the rest of the first one. Nothing is answered meanwhile, the smuggled request
    # least of all, and BODY_TIMEOUT ends the wait.
    with Redis() as redis, Server(redis, env={'BODY_TIMEOUT': '2'}) as server:
        data = upload(b'Content-Length: 40\r\nContent-Length: 5\r\n', b'hello') + SMUGGLED
        received, end = raw_exchange(server, data, timeout=8)
        assert end in ('closed', 'reset') and received == b'', (end, received[:200])


def test_refusals_of_ours_name_the_framing_and_are_counted():
    with Redis() as redis, Server(redis) as server:
        received, _ = raw_exchange(server, CASES['Content-Length, then Transfer-Encoding'])
        status, headers, body = parse_responses(received)[0]
        assert_json_error(status, headers, body, 400, what='CL + TE',
                          detail='Bad request framing: both Content-Length and Transfer-Encoding')
        received, _ = raw_exchange(server, CASES['two equal Content-Lengths'])
        status, headers, body = parse_responses(received)[0]
        assert_json_error(status, headers, body, 400, what='CL twice',
                          detail='Bad request framing: Content-Length more than once')
        _, _, metrics = server.request('GET', '/metrics')
        assert b'\nraven_zero_bad_framing_total 2\n' in metrics, metrics


def test_plain_framing_keeps_the_connection_and_serves_what_is_pipelined():
    # The control: the same requests framed once each are served, and so is the one
    # behind them.
    with Redis() as redis, Server(redis) as server:
        for what, framing, body in [
                ('Content-Length', b'Content-Length: 5\r\n', b'hello'),
                ('chunked', b'Transfer-Encoding: chunked\r\n', CHUNKED_BODY)]:
            received, end = raw_exchange(server, upload(framing, body) + SMUGGLED, timeout=5,
                                         responses=2)
            statuses = [r[0] for r in parse_responses(received)]
            assert statuses == [422, 200], '%s: %r (%s)' % (what, statuses, end)
