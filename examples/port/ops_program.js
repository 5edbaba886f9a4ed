// examples/port/ops_program.py ported line by line: the same numbers, printed the same way.
// node examples/port/ops_program.js   (after npm run build:ts)
const torch = require('../../dist');
const { F, optim } = torch;

const [N, D, C] = [240, 16, 3];
const X = torch.sin(torch.arange(0, N * D, { dtype: 'float32' }).view(N, D).mul(0.37));
const y = torch.arange(0, N).remainder(C);
X.indexPut_([y.eq(2), ':4'], X.index(y.eq(2), ':4').add(0.5));
const W = torch.cos(torch.arange(0, D * C, { dtype: 'float32' }).view(D, C)).mul(0.1).requiresGrad_();
const b = torch.zeros([C]).requiresGrad_();
const g = torch.ones([D]).requiresGrad_();
const opt = new optim.SGD([W, b, g], { lr: 0.5, momentum: 0.9 });
for (let step = 0; step < 30; step++) {
  torch.tidy(() => {
    const lo = (step * 40) % N;
    const [xb, yb] = [X.index(`${lo}:${lo + 40}`), y.index(`${lo}:${lo + 40}`)];
    const h = torch.gelu(torch.layerNorm(xb, [D], g));
    const logp = torch.logSoftmax(h.matmul(W).add(b), 1);
    const loss = logp.mul(torch.oneHot(yb, C)).sum(1).mean().neg();
    opt.zeroGrad();
    loss.backward();
    opt.step();
    if (step % 5 === 4) console.log(`step ${step + 1} loss ${loss.item().toFixed(9)}`);
  });
}
torch.noGrad(() => {
  const logits = torch.gelu(torch.layerNorm(X, [D], g)).matmul(W).add(b);
  const [, top2] = logits.topk(2, { dim: 1 });
  const hit2 = top2.eq(y.index(':', null)).any(1);
  console.log('top1', logits.argmax(1).eq(y).sum().item(), 'top2', hit2.sum().item());
  console.log('cumsum of hits at 60/120/240', JSON.stringify(hit2.long().cumsum(0).index([59, 119, 239]).tolist()).replace(/,/g, ', '));
  console.log('W[::5, 1]', JSON.stringify(W.index('::5', 1).tolist().map((v) => Math.round(v * 1e6) / 1e6)).replace(/,/g, ', '));
  // Keyword-only arguments, PyTorch's std order, named returns, a 0-dim tensor for a Scalar.
  const sd = logits.std(1, false), mx = logits.max(1);
  const f6 = (t) => t.tolist().map((v) => v.toFixed(6)).join(' ');
  console.log('std', f6(sd.index(':4')), 'max', f6(mx.values.index(':4')), JSON.stringify(mx.indices.index(':4').tolist()).replace(/,/g, ', '));
  const m = torch.zerosLike(W).add_(W, { alpha: 0.1 }).addcmul_(W, W, { value: 0.5 });
  const lr = torch.tensor(0.25);
  console.log('moment', m.sum().item().toFixed(6), 'scalar tensor', JSON.stringify(torch.full([2], lr).add(1, { alpha: lr }).tolist()).replace(/,/g, ', '));
});
