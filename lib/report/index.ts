/**
 * The training report: one self-contained HTML file with the loss curves, test
 * accuracy, confusion matrix, misclassified digits, learned kernels, feature maps,
 * model summary and settings of a run. `npm run train` writes one next to the model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expected, ValueError } from '../errors';
import { buildReport } from './build';
import type { ReportData } from './types';

export { buildReport } from './build';
export { collectReportData } from './collect';
export type { CollectReportInput, ReportOptions } from './collect';
export { confusionMatrix } from './confusion';
export type { ConfusionMatrix, ConfusionMatrixOptions, ClassAccuracy, Misclassified } from './confusion';
export { grayPng, pngDataUri } from './png';
export type { GrayPngOptions } from './png';
export { lineChart, barChart } from './svg';
export type { LineChartOptions, LineSeries, BarChartOptions } from './svg';
export { escapeHtml } from './html';
export type * from './types';

/**
 * Builds the report and writes it to `file` atomically: into a temporary file in the
 * same folder, then renamed over `file`, so a reader never sees half a report. The
 * folder must exist. Returns the absolute path and the size in bytes.
 * @example writeReport('model.report.html', collectReportData({ model, history, testData }));
 */
export function writeReport(file: string, data: ReportData): { path: string; bytes: number } {
  if (typeof file !== 'string' || file === '') expected('a file path', 'file', file);
  const target = path.resolve(file);
  const dir = path.dirname(target);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new ValueError(`writeReport: cannot write ${file}: the folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new ValueError(`writeReport: cannot write ${file}: ${dir} is not a folder`);
  const html = buildReport(data);
  const tmp = path.join(dir, `.${path.basename(target)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  try {
    fs.writeFileSync(tmp, html, { encoding: 'utf8', flag: 'wx' });
    fs.renameSync(tmp, target);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    throw new ValueError(`writeReport: cannot write ${file}: ${(e as Error).message}`);
  }
  return { path: target, bytes: Buffer.byteLength(html) };
}
