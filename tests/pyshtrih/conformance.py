# -*- coding: utf-8 -*-
"""Drives `kkm-agent emulate --model azur-01f` with pyshtrih, a Shtrih-M client this
project did not write (https://github.com/oleg-golovanov/pyshtrih, from PyPI).

Steps: device type, ФН status and expiry, ОФД exchange status, the ОФД server from
table 19, open shift, cash in
(register 241 moves by the sum), a classic sale and close (the ФН's last document
moves by one), find that document, X and Z. Every step is checked; the script exits
non-zero if any step fails.

Usage: python conformance.py [PATH_TO_KKM_AGENT]
(default: $KKM_AGENT, else target/debug/kkm-agent next to this repository).

pyshtrih 2.0.6 itself runs on Python 3. Its dependency unilog 2.0.0 (used when a
response is printed) still names `collections.Mapping`, which Python 3.10 removed; the
two-line shim below restores the old aliases before pyshtrih is imported. Nothing of
pyshtrih's protocol code is changed. pyshtrih has no device class for model 45
(АЗУР-01Ф), so the script uses ShtrihM01F, its ФН-era class whose command list covers
every command used here.
"""

import collections
import collections.abc
import os
import subprocess
import sys
import threading
import time
import traceback

# Compat shim for unilog on Python >= 3.10 (see the docstring).
for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

import pyshtrih  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

results = []


def step(name):
    def wrap(fn):
        def run(*args, **kwargs):
            try:
                value = fn(*args, **kwargs)
            except Exception as exc:  # any failure of a step is reported, then the run ends non-zero
                results.append((name, False, "%s: %s" % (type(exc).__name__, exc)))
                traceback.print_exc()
                return None
            results.append((name, True, value if value is not None else ""))
            return value
        return run
    return wrap


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def start_emulator(binary):
    proc = subprocess.Popen(
        [binary, "emulate", "--model", "azur-01f", "--listen", "pty", "--ephemeral", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    found = {}

    def reader():
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("port: ") and "port" not in found:
                found["port"] = line[len("port: "):].strip()

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.time() + 30
    while "port" not in found:
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise SystemExit("the emulator did not print its port")
        time.sleep(0.05)
    return proc, found["port"]


def main():
    binary = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("KKM_AGENT") \
        or os.path.join(REPO, "target", "debug", "kkm-agent")
    proc, port = start_emulator(binary)
    print("emulator on %s (pyshtrih %s)" % (port, pyshtrih.__version__))
    try:
        run(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    width = max(len(n) for n, _, _ in results) if results else 0
    failed = 0
    for name, ok, detail in results:
        print("%s  %s  %s" % ("PASS" if ok else "FAIL", name.ljust(width), detail))
        failed += 0 if ok else 1
    expected = 13
    if len(results) < expected:
        print("FAIL  only %d of %d steps ran" % (len(results), expected))
        failed += 1
    sys.exit(1 if failed else 0)


def run(port):
    # Cashier 1 and system administrator 30: pyshtrih's defaults, the factory passwords.
    dev = pyshtrih.ShtrihM01F(port=port, baudrate=115200, timeout=5)

    @step("connect and device type (FCh)")
    def device_type():
        dev.connect()
        info = dev.model()
        check(info[u"Модель устройства"] == 45, "model %r" % info[u"Модель устройства"])
        check(u"АЗУР" in info[u"Название устройства"], "name %r" % info[u"Название устройства"])
        return "model 45, %s" % info[u"Название устройства"]

    @step("ФН status (FF01h)")
    def fn_status():
        s = dev.fs_state()
        number = s[u"Номер ФН"].decode("ascii")
        check(len(number) == 16 and number.isdigit(), "ФН number %r" % number)
        return s[u"Номер последнего ФД"]

    @step("ФН expiry (FF03h)")
    def fn_expiry():
        d = dev.fs_expiration_time()[u"Срок действия"]
        check(d.year >= 2025, "expiry %s" % d)
        return str(d)

    @step("ОФД exchange status (FF39h)")
    def ofd_status():
        s = dev.fs_info_exchange()
        count = s[u"Количество сообщений для ОФД"]
        check(count >= 0, "count %r" % count)
        return "%d unsent" % count

    @step("ОФД server from table 19 (1Fh)")
    def ofd_server():
        # Row 1: field 1 the server (text), field 2 the port (binary).
        host = dev.read_table(19, 1, 1, str)[u"Значение"]
        port = dev.read_table(19, 1, 2, int)[u"Значение"]
        check(host == u"127.0.0.1", "server %r" % host)
        check(0 < port < 65536, "port %r" % port)
        return "%s:%d" % (host, port)

    @step("open shift (E0h, FF40h)")
    def open_shift():
        dev.open_shift()
        p = dev.fs_shift_params()
        check(p[u"Состояние смены"] == u"смена открыта", "shift state %r" % p[u"Состояние смены"])
        return "shift %d" % p[u"Номер смены"]

    def register_241():
        return dev.request_monetary_register(241)[u"Содержимое регистра"]

    @step("cash in 100,00 (50h): register 241 moves by the sum")
    def cash_in():
        before = register_241()
        dev.income(10000)
        after = register_241()
        check(after - before == 10000, "241: %d -> %d" % (before, after))
        return "%d -> %d" % (before, after)

    @step("classic sale (80h)")
    def sale():
        # 2 x 123,45 in tax group 1; quantity in thousandths.
        dev.sale((u"Кофе", 2000, 12345), department_num=1, tax1=1)

    @step("classic close (85h): change, and the ФН's last document moves by one")
    def close(last_before):
        r = dev.close_check(cash=30000)
        check(r[u"Сдача"] == 30000 - 24690, "change %r" % r[u"Сдача"])
        last = dev.fs_state()[u"Номер последнего ФД"]
        check(last == last_before + 1, "last ФД %d -> %d" % (last_before, last))
        return last

    @step("find that document (FF0Ah)")
    def find(number):
        d = dev.fs_find_document_by_num(number)
        check(d[u"Тип фискального документа"] == 3, "type %r" % d[u"Тип фискального документа"])
        return "ФД %d is a receipt" % number

    @step("register 193 holds the cash sale (1Ah)")
    def sales_register():
        v = dev.request_monetary_register(193)[u"Содержимое регистра"]
        check(v == 24690, "193 = %d" % v)
        return v

    @step("X-report (40h)")
    def x_report():
        dev.x_report()

    @step("Z-report (41h): shift closed, ФН makes a document")
    def z_report(last_before):
        dev.z_report()
        s = dev.fs_state()
        check(s[u"Номер последнего ФД"] == last_before + 1, "last ФД %r" % s[u"Номер последнего ФД"])
        state = dev.fs_shift_params()[u"Состояние смены"]
        check(state == u"смена закрыта", "shift state %r" % state)

    if device_type() is None:
        return
    fn_status()
    fn_expiry()
    ofd_status()
    ofd_server()
    open_shift()
    cash_in()
    last_before = dev.fs_state()[u"Номер последнего ФД"]
    sale()
    last = close(last_before)
    if last is not None:
        find(last)
    sales_register()
    x_report()
    z_report(last if last is not None else last_before + 1)
    dev.disconnect()


if __name__ == "__main__":
    main()
