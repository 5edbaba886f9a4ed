#!/usr/bin/env python3
# Prints the public aten:: operator schemas this Python's torch has in its dispatcher, as
# the JSON array `node scripts/gen-ops.js --snapshot` writes (sorted, one string
# each, the form c10's `operator<<(FunctionSchema)` prints). The JIT's own builtins
# (aten::Bool.Tensor, ...) are not dispatcher ops and are left out, as the native
# opSchemas() leaves them out. For an engine torchnode is not built against, e.g.
#   .ci/trixie.sh run 'python3 scripts/op_schemas.py' > lib/ops/schemas/2.6.0.json
import json
import sys

import torch

out = set()
for s in torch._C._jit_get_all_schemas():
    text = str(s)
    if not text.startswith('aten::'):
        continue
    # The ops and overloads gen-ops.js could type (its name-level rules): public, not
    # backward, not out=.
    short = s.name[len('aten::'):]
    if short.startswith('_') or 'backward' in short:
        continue
    if s.overload_name == 'out' or s.overload_name.endswith('_out'):
        continue
    q = s.name + ('.' + s.overload_name if s.overload_name else '')
    dump = torch._C._dispatch_dump(q)
    if 'schema: ' not in dump:
        continue
    out.add(text)
version = torch.__version__.split('+')[0]
if len(sys.argv) > 1 and sys.argv[1] == '--version':
    print(version)
    sys.exit(0)
sys.stdout.write('[\n' + ',\n'.join(json.dumps(x) for x in sorted(out)) + '\n]\n')
