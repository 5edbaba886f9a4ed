# A small PyTorch program that leans on what issue 14 added: the generic ops
# (layer_norm, gelu, log_softmax, one_hot, topk, cumsum), indexing (slices, masks,
# integer lists, index writes), float64 via set_default_dtype-free explicit dtypes.
# examples/port/ops_program.js is its line-by-line port; both print the same lines.
import torch
import torch.nn.functional as F

N, D, C = 240, 16, 3
X = torch.sin(torch.arange(0, N * D, dtype=torch.float32).view(N, D) * 0.37)
y = torch.arange(N) % C
X[y == 2, :4] += 0.5                      # a mask and a slice, written in place
W = (torch.cos(torch.arange(0, D * C, dtype=torch.float32).view(D, C)) * 0.1).requires_grad_()
b = torch.zeros(C, requires_grad=True)
g = torch.ones(D, requires_grad=True)
opt = torch.optim.SGD([W, b, g], lr=0.5, momentum=0.9)
for step in range(30):
    lo = (step * 40) % N
    xb, yb = X[lo:lo + 40], y[lo:lo + 40]
    h = F.gelu(F.layer_norm(xb, [D], g))
    logp = F.log_softmax(h @ W + b, dim=1)
    loss = -(logp * F.one_hot(yb, C)).sum(1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 5 == 4:
        print(f'step {step + 1} loss {loss.item():.9f}')
with torch.no_grad():
    logits = F.gelu(F.layer_norm(X, [D], g)) @ W + b
    top2 = logits.topk(2, dim=1).indices
    hit2 = (top2 == y[:, None]).any(1)
    print('top1', (logits.argmax(1) == y).sum().item(), 'top2', hit2.sum().item())
    print('cumsum of hits at 60/120/240', hit2.long().cumsum(0)[[59, 119, 239]].tolist())
    print('W[::5, 1]', [round(v, 6) for v in W[::5, 1].tolist()])
    # Keyword-only arguments, PyTorch's std order, named returns, a 0-dim tensor for a Scalar.
    sd, mx = logits.std(1, False), logits.max(1)
    print('std', ' '.join(f'{v:.6f}' for v in sd[:4].tolist()), 'max', ' '.join(f'{v:.6f}' for v in mx.values[:4].tolist()), mx.indices[:4].tolist())
    m = torch.zeros_like(W).add_(W, alpha=0.1).addcmul_(W, W, value=0.5)
    lr = torch.tensor(0.25)
    print('moment', f'{m.sum().item():.6f}', 'scalar tensor', torch.full((2,), lr).add(1, alpha=lr).tolist())
