"""Link previewers (PREVIEW_AGENTS) on the links people paste into chats: every default
agent, as it really names itself, gets on GET and HEAD of /download/{key} and
/preview/{key} a small HTML page with Open Graph tags and nothing about the file; no
use and no preview is spent, no store call is made and no failure counted. Browsers,
curl and the like still get the file; the setting can name others or none."""

import os

import yaml  # python3-yaml (scripts/deps.sh)

from harness import (CLIENT, ROOT, Redis, Server, assert_common_headers, assert_json_error,
                     assert_normal_miss, download, lines_of, miss, run, sha256, unknown_key,
                     upload_ok, wait_until)

# What each default entry matches, as the agent sends it (from the operators' crawler
# pages, the clients' source, and site owners' logs; see README.md, "Link previewers").
AGENTS = {
    'slackbot': 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
    'slack-imgproxy': 'Slack-ImgProxy (+https://api.slack.com/robots)',
    'discordbot': 'Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)',
    'telegrambot': 'TelegramBot (like TwitterBot)',
    'whatsapp': 'WhatsApp/2.23.20.0 A',
    'facebookexternalhit': 'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
    'facebot': 'Facebot',
    'meta-externalagent':
        'meta-externalagent/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)',
    'meta-externalfetcher':
        'meta-externalfetcher/1.1 (+https://developers.facebook.com/docs/sharing/webmasters/crawler)',
    'twitterbot': 'Twitterbot/1.0',
    'linkedinbot':
        'LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)',
    'skypeuripreview': 'Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 '
                       'skype-url-preview@microsoft.com',
    'microsoftpreview': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, '
                        'like Gecko) Chrome/112.0.0.0 Safari/537.36 Edg/112.0.1722.58 '
                        'MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview',
    'redditbot': 'Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)',
    'pinterest.com/bot': 'Pinterest/0.2 (+https://www.pinterest.com/bot.html)',
    'cardyb': 'Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)',
    'mastodon': 'http.rb/5.1.1 (Mastodon/4.2.0; +https://mastodon.social/)',
    'matrix-org/synapse': 'Synapse (bot; +https://github.com/matrix-org/synapse)',
    'zulipurlpreview': 'Mozilla/5.0 (compatible; ZulipURLPreview/9.0; +https://chat.zulip.org)',
    'embedly': 'Mozilla/5.0 (compatible; Embedly/0.2; +http://support.embed.ly/)',
    'iframely': 'Iframely/1.3.1 (+https://iframely.com/docs/about)',
    'vkshare': 'Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)',
    'applebot': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, '
                'like Gecko) Version/17.4 Safari/605.1.15 (Applebot/0.1; '
                '+http://www.apple.com/go/applebot)',
    'googlebot': 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'google-inspectiontool': 'Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)',
    'googleother': 'GoogleOther',
    'google-pagerenderer': 'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) '
                           'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile '
                           'Safari/537.36 (compatible; Google-PageRenderer; '
                           '+https://developers.google.com/)',
    'googlemessages': 'GoogleMessages',
    'google-read-aloud': 'Mozilla/5.0 (Linux; Android 7.0; SM-G930V Build/NRD90M) '
                         'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/59.0.3071.125 Mobile '
                         'Safari/537.36 (compatible; Google-Read-Aloud; '
                         '+https://support.google.com/webmasters/answer/1061943)',
    'feedfetcher-google': 'FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)',
    'bingbot': 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
    'bingpreview': 'Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) '
                   'BingPreview/1.0b',
    'slurp': 'Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)',
    'duckduckbot': 'DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)',
    'baiduspider': 'Mozilla/5.0 (compatible; Baiduspider/2.0; '
                   '+http://www.baidu.com/search/spider.html)',
    'yandex.com/bots': 'Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)',
    'gptbot': 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; '
              '+https://openai.com/gptbot)',
    'chatgpt-user': 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; '
                    'ChatGPT-User/1.0; +https://openai.com/bot',
    'oai-searchbot': 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; '
                     'OAI-SearchBot/1.0; +https://openai.com/searchbot',
    'claudebot': 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; '
                 '+claudebot@anthropic.com)',
    'claude-user': 'Claude-User (+https://support.anthropic.com/)',
    'perplexitybot': 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; '
                     'PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)',
    'ccbot': 'CCBot/2.0 (https://commoncrawl.org/faq/)',
    'amazonbot': 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Amazonbot/0.1; '
                 '+https://developer.amazon.com/support/amazonbot) Chrome/119.0.6045.214 '
                 'Safari/537.36',
    'bytespider': 'Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) '
                  'Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)',
}
# Previewers that name themselves after another: Apple's iMessage and Signal.
ALSO = {
    'iMessage': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, '
                'like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot '
                'Twitterbot/1.0',
    'Signal': 'WhatsApp/2',
}
# People, and the tools people type: they get the file.
PEOPLE = {
    'Chrome': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
              'Chrome/124.0.0.0 Safari/537.36',
    'Firefox': 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
    'Safari on iOS': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 '
                     '(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
    'Edge': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
            'Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51',
    'Teams desktop': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like '
                     'Gecko) Teams/1.6.00.4472 Chrome/98.0.4758.141 Electron/17.4.4 Safari/537.36',
    'a CUBOT phone': 'Mozilla/5.0 (Linux; Android 11; CUBOT X30) AppleWebKit/537.36 (KHTML, like '
                     'Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
    'headless Chromium': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) '
                         'HeadlessChrome/120.0.6099.224 Safari/537.36',
    'curl': 'curl/7.88.1',
    'wget': 'Wget/1.21.3',
    'python': 'python-requests/2.28.1',
    'none': None,
}
OG = (b'<meta property="og:title"', b'<meta property="og:description"',
      b'<meta property="og:type"')


def default_agents():
    with open(os.path.join(ROOT, 'etc', 'raven-zero.yaml'), encoding='utf-8') as f:
        return yaml.safe_load(f)['preview_agents']


def ua(agent):
    return {} if agent is None else {'User-Agent': agent}


def assert_link_page(what, status, headers, body, method, secrets):
    """The link page: 200 HTML with its Open Graph tags, the headers every answer
    carries, and none of the file's bytes or details."""
    assert status == 200, '%s: %d %r' % (what, status, body[:200])
    assert headers.get('content-type') == 'text/html; charset=utf-8', (what, headers)
    assert_common_headers(what, headers)
    for name in ('content-disposition', 'x-sha256'):
        assert name not in headers, '%s: %s sent' % (what, name)
    if method == 'HEAD':
        assert body == b'', (what, body[:100])
        return
    for tag in OG:
        assert tag in body, '%s: no %r' % (what, tag)
    assert b'<img' not in body and b'og:image' not in body, what
    for secret in secrets:
        assert secret not in body, '%s: the page holds %r' % (what, secret[:40])


def test_every_default_agent_gets_the_link_page_and_spends_nothing():
    defaults = default_agents()
    assert sorted(AGENTS) == sorted(defaults), 'a default agent without a sample, or back: %r' \
        % sorted(set(AGENTS) ^ set(defaults))
    for entry, agent in AGENTS.items():
        assert entry in agent.lower(), (entry, agent)
    with Redis() as redis, Server(redis) as server:
        data = b'the secret contents of the file\n' * 30
        up, _ = upload_ok(server, data, filename='salaries-2026.txt', uses=2)
        key = up['key']
        secrets = (data[:31], b'salaries', up['sha256'].encode(), str(len(data)).encode(),
                   key.encode())
        for name, agent in list(AGENTS.items()) + list(ALSO.items()):
            for method in ('GET', 'HEAD'):
                for endpoint in ('download', 'preview'):
                    what = '%s %s by %s' % (method, endpoint, name)
                    status, headers, body = server.request(
                        method, '/%s/%s' % (endpoint, key), headers=ua(agent))
                    assert_link_page(what, status, headers, body, method, secrets)
        # Every use and the one preview are still there.
        status, _, st = server.json('GET', '/status/' + key)
        assert st['status'] == 'active' and st['remaining_uses'] == 2, st
        status, _, pv = server.json('GET', '/preview/' + key)
        assert status == 200 and pv['filename'] == 'salaries-2026.txt', (status, pv)
        for _ in range(2):
            status, headers, got = download(server, key)
            assert status == 200 and got == data, status
        assert download(server, key)[0] == 410


def test_people_and_their_tools_get_the_file_not_the_page():
    with Redis() as redis, Server(redis) as server:
        data = b'for people\n'
        for name, agent in PEOPLE.items():
            up, _ = upload_ok(server, data)
            status, headers, got = download(server, up['key'], headers=ua(agent))
            assert status == 200 and got == data, '%s got %d %r' % (name, status, got[:80])
            assert headers.get('x-sha256') == sha256(data), name
            status, _, _ = server.request('HEAD', '/download/' + up['key'], headers=ua(agent))
            assert status == 405, '%s: HEAD of a download answered %d' % (name, status)


def test_a_previewer_needs_no_store_counts_no_failure_and_gets_the_same_page_for_any_key():
    env = {'DOWNLOAD_FAIL_LIMIT': '2', 'DOWNLOAD_BLOCK_WINDOW': '60'}
    with Redis() as redis, Server(redis, env=env) as server:
        slack = ua(AGENTS['slackbot'])
        pages = set()
        for key in [unknown_key() for _ in range(5)] + ['not-a-key', 'a' * 60]:
            for endpoint in ('download', 'preview'):
                status, headers, body = server.request('GET', '/%s/%s' % (endpoint, key),
                                                       headers=slack, source_address=CLIENT)
                assert_link_page('%s of %r' % (endpoint, key), status, headers, body, 'GET',
                                 (key.encode(),))
                pages.add(body)
        assert len(pages) == 1, 'the page differs from key to key'
        status, _, body = miss(server, 'status', CLIENT)
        assert_normal_miss('status', status, body)  # fourteen pages later: no failure counted
        redis.stop()
        wait_until(lambda: server.request('GET', '/status/' + unknown_key())[0] == 503, 10,
                   message='503 once the store is down')
        status, headers, body = server.request('GET', '/download/' + unknown_key(), headers=slack)
        assert_link_page('with the store down', status, headers, body, 'GET', ())
        status, headers, body = server.request('GET', '/download/' + unknown_key(),
                                               headers=ua(PEOPLE['Firefox']))
        assert_json_error(status, headers, body, 503, 'Service temporarily unavailable',
                          'a browser with the store down')


def test_preview_agents_can_name_other_agents_or_none():
    with Redis() as redis, Server(redis, env={'PREVIEW_AGENTS': 'MyPreviewer, [Team Scanner]'}) \
            as server:
        up, _ = upload_ok(server, b'custom list\n', uses=3)
        for agent in ('MyPreviewer/1.0', 'Mozilla/5.0 [team scanner] like Gecko'):
            status, headers, body = server.request('GET', '/download/' + up['key'],
                                                   headers={'User-Agent': agent})
            assert_link_page(agent, status, headers, body, 'GET', ())
        status, _, got = download(server, up['key'], headers=ua(AGENTS['slackbot']))
        assert status == 200 and got == b'custom list\n', 'Slackbot is not listed here'
    with Redis() as redis, Server(redis, env={'PREVIEW_AGENTS': ''}) as server:
        up, _ = upload_ok(server, b'no list\n')
        status, _, got = download(server, up['key'], headers=ua(AGENTS['slackbot']))
        assert status == 200 and got == b'no list\n'


def test_a_bad_preview_agents_value_stops_start_up_with_one_line_naming_it():
    for value in ('a' * 129, 'bot\x01', 'caf\u00e9bot'):
        code, _, stderr = run(['-t'], env={'PREVIEW_AGENTS': value})
        assert code == 1, (value, code, stderr)
        assert len(lines_of(stderr)) == 1 and 'PREVIEW_AGENTS=' in stderr, stderr
        assert 'parts of a User-Agent' in stderr, stderr
