"""The user documentation: README.md and docs/*.md link only to files of this repository
(and to headings that exist), docs/api.md has a section for every operation of
openapi.json with its statuses and none for an operation that does not exist, and the
settings tables give the defaults of etc/raven-zero.yaml (itself held to the built-in
defaults by the unit tests)."""

import glob
import json
import os
import re

import yaml  # python3-yaml (scripts/deps.sh)

from harness import ROOT

# Nothing here runs the server binary: once is enough, not once per binary.
FLAVOURS = ('rel',)

DOCS = ['README.md'] + sorted(os.path.relpath(p, ROOT)
                              for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))
API = os.path.join('docs', 'api.md')
METHODS = ('get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace')


def read(rel):
    with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
        return f.read()


def prose(text):
    """The text without its fenced code blocks (examples, not links or headings)."""
    return re.sub(r'^```.*?^```', '', text, flags=re.M | re.S)


def slug(heading):
    """The anchor a Markdown renderer gives a heading (GitHub's rule)."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return text.replace(' ', '-')


def anchors(rel):
    return {slug(m.group(1)) for m in re.finditer(r'^#+\s+(.*)$', prose(read(rel)), re.M)}


def sections(text, level):
    """{heading: body} of the headings of this level (## = 2)."""
    marks = list(re.finditer(r'^%s\s+(.*)$' % ('#' * level), text, re.M))
    return {m.group(1).strip(): text[m.end():marks[i + 1].start() if i + 1 < len(marks) else None]
            for i, m in enumerate(marks)}


def test_readme_and_docs_link_only_to_files_and_headings_of_the_repository():
    assert API in DOCS, 'docs/api.md is missing'
    assert '](docs/api.md)' in read('README.md'), 'the README does not link docs/api.md'
    for rel in DOCS:
        text = read(rel)
        for outside in ('../shared', 'SPEC.md'):
            assert outside not in text, '%s mentions %s, which no clone has' % (rel, outside)
        for target in re.findall(r'\]\(([^)\s]+)\)', prose(text)):
            if re.match(r'^[a-z]+:', target):
                continue  # a web address
            file_part, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(os.path.join(ROOT, rel)),
                                                 file_part)) if file_part else \
                os.path.join(ROOT, rel)
            assert dest.startswith(ROOT + os.sep), '%s links outside the repository: %s' % (
                rel, target)
            assert os.path.exists(dest), '%s links a missing file: %s' % (rel, target)
            if anchor:
                assert dest.endswith('.md'), '%s: anchor into a non-Markdown file: %s' % (
                    rel, target)
                assert anchor in anchors(os.path.relpath(dest, ROOT)), \
                    '%s links a heading that does not exist: %s' % (rel, target)


def test_api_doc_has_a_section_per_operation_with_its_statuses_and_no_other():
    with open(os.path.join(ROOT, 'openapi.json')) as f:
        doc = json.load(f)
    text = prose(read(API))
    endpoints = sections(sections(text, 2)['Endpoints'], 3)
    # Every path takes OPTIONS and the read-only ones HEAD: said once, under Basics.
    operations = {'%s %s' % (m.upper(), p): op for p, item in doc['paths'].items()
                  for m, op in item.items() if m in METHODS and m not in ('options', 'head')}
    assert set(endpoints) == set(operations), (sorted(endpoints), sorted(operations))
    basics = sections(text, 2)['Basics']
    for heading, op in operations.items():
        for code in op['responses']:
            where = basics if code in ('400', '414', '431') else endpoints[heading]
            assert re.search(r'\b%s\b' % code, where), '%s: status %s is not documented' % (
                heading, code)


def settings_table(text):
    """{SETTING: default} of a Markdown table whose rows start `| `NAME` | default |`;
    a row `A` / `B` with defaults `a` / `b` gives both."""
    out = {}
    for names, default in re.findall(r'^\| (`[A-Z_]+`(?: / `[A-Z_]+`)*) \| ([^|]*) \|', text,
                                     re.M):
        names = re.findall(r'`([A-Z_]+)`', names)
        values = [v.strip().strip('`') for v in default.split(' / ')] if len(names) > 1 \
            else [default.strip()]
        for name, value in zip(names, values):
            out[name] = value
    return out


def yaml_default(value):
    """A value of etc/raven-zero.yaml as the docs write it."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return ','.join(str(v) for v in value)
    return str(value)


def doc_default(value):
    value = value.strip()
    if value.startswith('empty'):
        return ''
    m = re.match(r'^`([^`]*)`', value)
    return m.group(1) if m else value


def test_settings_tables_of_readme_and_api_doc_give_the_built_in_defaults():
    example = {k.upper(): yaml_default(v)
               for k, v in yaml.safe_load(read(os.path.join('etc', 'raven-zero.yaml'))).items()}
    for rel, section in (('README.md', 'Configuration'), (API, 'Settings that shape the API')):
        table = settings_table(sections(prose(read(rel)), 2)[section])
        assert len(table) >= 10, '%s: no settings table under %r' % (rel, section)
        for name, value in table.items():
            if name in example:  # the word list's default depends on where it runs
                assert doc_default(value) == example[name], \
                    '%s says %s defaults to %r; etc/raven-zero.yaml says %r' % (
                        rel, name, doc_default(value), example[name])
            else:
                assert name == 'DICEWARE_WORDLIST_PATH', '%s: unknown setting %s' % (rel, name)
