"""swift_run.py - run some of OpenStack Swift's servers (account, container, object,
proxy) in this one process, for the object-storage tests: harness.Swift starts it with
Debian's /usr/bin/python3 (where Swift lives), a directory of configuration and the
names of the servers to run.

    /usr/bin/python3 swift_run.py ETC_DIR proxy account container

Swift's own launchers read /etc/swift/swift.conf (the path is fixed in
swift.common.utils); this one points Swift at ETC_DIR/swift.conf before anything
loads it, so the tests depend on nothing in /etc. Each server listens on the
bind_ip/bind_port of ETC_DIR/NAME-server.conf, with workers = 0 (no fork): the pid the
harness started is the server it kills.
"""

import os
import sys

from swift.common import utils

etc = os.path.abspath(sys.argv[1])
utils.SWIFT_CONF_FILE = os.path.join(etc, 'swift.conf')

from swift.common import storage_policy  # noqa: E402  (after the path is set)

storage_policy.reload_storage_policies()
utils.validate_configuration()
utils.eventlet_monkey_patch()

import eventlet  # noqa: E402
import eventlet.wsgi  # noqa: E402
from swift.common import wsgi as swsgi  # noqa: E402
from swift.obj import server as objserver  # noqa: E402

os.environ['TZ'] = 'UTC+0'
eventlet.hubs.use_hub(utils.get_hub())
pool = eventlet.GreenPool()
for name in sys.argv[2:]:
    conf_path = os.path.join(etc, name + '-server.conf')
    conf = swsgi.appconfig(conf_path, name=name + '-server')
    global_conf = {'log_name': name + '-server'}
    if name == 'object':
        objserver.global_conf_callback(conf, global_conf)
    utils.get_logger(conf, name + '-server', log_to_console=True)
    sock = eventlet.listen((conf.get('bind_ip', '127.0.0.1'), int(conf['bind_port'])))
    app = swsgi.loadapp(conf_path, global_conf=global_conf)
    pool.spawn(eventlet.wsgi.server, sock, app, swsgi.NullLogger(),
               custom_pool=swsgi.RestrictedGreenPool(size=1024),
               protocol=swsgi.SwiftHttpProtocol, socket_timeout=60,
               capitalize_response_headers=False)
print('swift_run: listening: %s' % ' '.join(sys.argv[2:]), flush=True)
pool.waitall()
