#!/usr/bin/env bash
# The layers (Makefile.am builds one library per layer with only its own and lower include
# paths): no source includes a header by path (which would get round those paths), and every
# quoted include goes to the same module or a lower layer, so no two modules include each
# other and db/, policy/ and base/ never reach into proxy/; a folder's private header
# (NAME-int.h) is included only inside that folder. The rank table is Makefile.am's order; a
# module on the same rank as another may not include it.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

out=$(cd "$TOP_SRCDIR" && python3 - <<'PY'
import os, re, sys
rank = {'base': 0, 'policy': 1, 'db': 1, 'proxy/oci': 2, 'proxy/aws': 2,
        'proxy/config': 3, 'proxy/cache': 4, 'proxy/upstream': 4, 'proxy/http': 4, 'proxy/fill': 5,
        'proxy/ecr': 5, 'proxy/api': 6, 'proxy/cli': 6, 'proxy': 7}
owner, files = {}, []
for mod in rank:
    for name in sorted(os.listdir(mod)):
        if name.endswith(('.c', '.h')):
            path = os.path.join(mod, name)
            files.append((mod, path))
            if name.endswith('.h'):
                if name in owner:
                    print(f'{path}: header name also in {owner[name]}')
                owner[name] = mod
bad, edges = 0, 0
for mod, path in files:
    for n, line in enumerate(open(path, encoding='utf-8'), 1):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if not m or m.group(1) == 'config.h':
            continue
        inc = m.group(1)
        if '/' in inc:
            print(f'{path}:{n}: includes "{inc}" by path'); bad += 1; continue
        to = owner.get(inc)
        if to is None:
            print(f'{path}:{n}: "{inc}" is no module header'); bad += 1; continue
        edges += 1
        if inc.endswith('-int.h') and to != mod:
            print(f'{path}:{n}: {inc} is private to {to}/'); bad += 1; continue
        if to != mod and rank[to] >= rank[mod]:
            print(f'{path}:{n}: {mod} (layer {rank[mod]}) includes {to}/{inc} (layer {rank[to]})')
            bad += 1
print(f'{len(files)} files, {edges} includes, {bad} wrong')
sys.exit(1 if bad else 0)
PY
)
rc=$?
echo "$out" >&2
if [ "$rc" -eq 0 ]; then
    pass "every include goes down the layers ($(echo "$out" | tail -1))"
else
    fail "includes that go up or sideways: $(echo "$out" | tail -1)"
fi
e2e_done
