import { describe, expect, it } from 'vitest';
import { DX } from '../../src/lib/data/dx.ts';
import { confusionMatrix, normalizeRows } from '../../src/lib/metrics/confusion.ts';
import { MetricsInputError, argmax, parsePredictions } from '../../src/lib/metrics/input.ts';
import {
  classificationReport,
  classificationReportRows,
  classificationReportText,
  confusionMatrixRows,
  formatFixed,
  reportToJson,
  toCsv,
} from '../../src/lib/metrics/report.ts';
import { oneVsRestRoc, rocAuc, rocCurve } from '../../src/lib/metrics/roc.ts';

describe('confusion matrix', () => {
  it('puts true classes in rows and predictions in columns, in class order', () => {
    // scikit-learn's docstring example: y_true = [2, 0, 2, 2, 0, 1], y_pred = [0, 0, 2, 2, 0, 2].
    expect(confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3)).toEqual([
      [2, 0, 0],
      [0, 0, 1],
      [1, 0, 2],
    ]);
  });

  it('covers every DX class, present or not, and row-normalises with zero rows for absent classes', () => {
    // akiec→akiec, akiec→nv, nv→nv ×2, mel→nv; df, bcc, bkl, vasc absent.
    const m = confusionMatrix([0, 0, 5, 5, 4], [0, 5, 5, 5, 5], DX.length);
    expect(m).toHaveLength(7);
    expect(m[0]).toEqual([1, 0, 0, 0, 0, 1, 0]);
    expect(m[4]).toEqual([0, 0, 0, 0, 0, 1, 0]);
    expect(m[5]).toEqual([0, 0, 0, 0, 0, 2, 0]);
    const n = normalizeRows(m);
    expect(n[0]).toEqual([0.5, 0, 0, 0, 0, 0.5, 0]);
    expect(n[3]).toEqual([0, 0, 0, 0, 0, 0, 0]);
    expect(n[5]).toEqual([0, 0, 0, 0, 0, 1, 0]);
  });

  it('names the index at fault', () => {
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(/y_pred has 1 labels but y_true has 2/);
    expect(() => confusionMatrix([0, 3], [0, 1], 2)).toThrow(/y_true\[1\] = 3 is not a class index/);
    expect(() => confusionMatrix([0, 1], [0, -1], 2)).toThrow(/y_pred\[1\] = -1/);
  });
});

describe('classification report', () => {
  it('prints scikit-learn’s documented example exactly', () => {
    // classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], target_names=['class 0', 'class 1', 'class 2'])
    // as printed in scikit-learn's docstring.
    const report = classificationReport({
      classes: ['class 0', 'class 1', 'class 2'],
      yTrue: [0, 1, 2, 2, 2],
      yPred: [0, 0, 2, 2, 1],
    });
    expect(classificationReportText(report)).toBe(
      [
        '              precision    recall  f1-score   support',
        '',
        '     class 0       0.50      1.00      0.67         1',
        '     class 1       0.00      0.00      0.00         1',
        '     class 2       1.00      0.67      0.80         3',
        '',
        '    accuracy                           0.60         5',
        '   macro avg       0.50      0.56      0.49         5',
        'weighted avg       0.70      0.60      0.61         5',
        '',
      ].join('\n'),
    );
  });

  // Five classes; c is never predicted, d is absent from the labels but predicted once, e appears nowhere.
  //   y_true: a a a b b c c        y_pred: a a b b d a b
  // Confusion (rows true a..e, columns predicted a..e):
  //   a [2 1 0 0 0]   b [0 1 0 1 0]   c [1 1 0 0 0]   d [0 0 0 0 0]   e [0 0 0 0 0]
  // tp = (2, 1, 0, 0, 0); support = (3, 2, 2, 0, 0); predicted = (3, 3, 0, 1, 0)
  // precision = tp/predicted = (2/3, 1/3, 0 [0/0], 0/1 = 0, 0 [0/0])
  // recall    = tp/support   = (2/3, 1/2, 0/2 = 0, 0 [0/0], 0 [0/0])
  // f1 = 2tp/(support+predicted) = (4/6, 2/5, 0/2, 0/1, 0 [0/0])
  const hand = classificationReport({
    classes: ['a', 'b', 'c', 'd', 'e'],
    yTrue: [0, 0, 0, 1, 1, 2, 2],
    yPred: [0, 0, 1, 1, 3, 0, 1],
  });

  it('computes per-class figures, with zero divisions as 0 and flagged', () => {
    expect(hand.confusionMatrix).toEqual([
      [2, 1, 0, 0, 0],
      [0, 1, 0, 1, 0],
      [1, 1, 0, 0, 0],
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ]);
    const by = Object.fromEntries(hand.perClass.map((m) => [m.name, m]));
    expect(by.a).toMatchObject({ precision: 2 / 3, recall: 2 / 3, f1: 4 / 6, support: 3, predicted: 3 });
    expect(by.b).toMatchObject({ precision: 1 / 3, recall: 1 / 2, f1: 2 / 5, support: 2, predicted: 3 });
    expect(by.c).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 2, predicted: 0 });
    expect(by.d).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 0, predicted: 1 });
    expect(by.e).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 0, predicted: 0 });
    expect(hand.zeroDivision).toEqual({ precision: ['c', 'e'], recall: ['d', 'e'], f1: ['e'] });
    // No probabilities: no AUC, nothing flagged for it.
    expect(hand.perClass.every((m) => m.auc === null)).toBe(true);
    expect(hand.macroAuc).toBeNull();
    expect(hand.aucUndefined).toEqual([]);
    expect(hand.roc).toBeNull();
  });

  it('computes accuracy, balanced accuracy, macro and weighted averages', () => {
    expect(hand.samples).toBe(7);
    // accuracy = (2 + 1 + 0) / 7
    expect(hand.accuracy).toBeCloseTo(3 / 7, 15);
    // balanced accuracy = mean recall over classes in y_true (a, b, c) = (2/3 + 1/2 + 0) / 3 = 7/18;
    // d (predicted only) and e (nowhere) are left out, as scikit-learn does.
    expect(hand.balancedAccuracy).toBeCloseTo(7 / 18, 15);
    // macro = mean over all 5 listed classes, zeros included:
    //   precision (2/3 + 1/3) / 5 = 1/5; recall (2/3 + 1/2) / 5 = 7/30; f1 (2/3 + 2/5) / 5 = 16/75
    expect(hand.macroAvg.precision).toBeCloseTo(1 / 5, 15);
    expect(hand.macroAvg.recall).toBeCloseTo(7 / 30, 15);
    expect(hand.macroAvg.f1).toBeCloseTo(16 / 75, 15);
    expect(hand.macroAvg.support).toBe(7);
    // weighted by support (3, 2, 2, 0, 0) / 7:
    //   precision (3·2/3 + 2·1/3) / 7 = 8/21; recall (3·2/3 + 2·1/2) / 7 = 3/7 (= accuracy); f1 (3·2/3 + 2·2/5) / 7 = 2/5
    expect(hand.weightedAvg.precision).toBeCloseTo(8 / 21, 15);
    expect(hand.weightedAvg.recall).toBeCloseTo(3 / 7, 15);
    expect(hand.weightedAvg.f1).toBeCloseTo(2 / 5, 15);
  });

  it('prints the hand case as scikit-learn would', () => {
    // Widths: max(len('a'), len('weighted avg') = 12, 2) = 12.
    expect(classificationReportText(hand)).toBe(
      [
        '              precision    recall  f1-score   support',
        '',
        '           a       0.67      0.67      0.67         3',
        '           b       0.33      0.50      0.40         2',
        '           c       0.00      0.00      0.00         2',
        '           d       0.00      0.00      0.00         0',
        '           e       0.00      0.00      0.00         0',
        '',
        '    accuracy                           0.43         7',
        '   macro avg       0.20      0.23      0.21         7',
        'weighted avg       0.38      0.43      0.40         7',
        '',
      ].join('\n'),
    );
  });

  it('widens the name column for long class names and honours digits', () => {
    const report = classificationReport({
      classes: ['melanocytic nevus', 'other'],
      yTrue: [0, 1],
      yPred: [0, 0],
    });
    const lines = classificationReportText(report, 3).split('\n');
    expect(lines[0]).toBe(`${' '.repeat(17)}  precision    recall  f1-score   support`);
    expect(lines[2]).toBe('melanocytic nevus      0.500     1.000     0.667         1');
    // name (17) + ' ' + two empty 10-wide cells + ' ' + '    0.500' + ' ' + '        2'
    expect(lines[5]).toBe(`${' '.repeat(9)}accuracy${' '.repeat(26)}0.500${' '.repeat(9)}2`);
  });

  it('writes CSV rows with full-precision figures and flags', () => {
    const rows = classificationReportRows(hand);
    expect(rows[0]).toEqual(['class', 'precision', 'recall', 'f1-score', 'support', 'auc', 'flags']);
    expect(rows[3]).toEqual(['c', 0, 0, 0, 2, null, 'precision zero division']);
    expect(rows[5]).toEqual([
      'e',
      0,
      0,
      0,
      0,
      null,
      'precision zero division; recall zero division; f1 zero division',
    ]);
    expect(rows[6]).toEqual(['accuracy', null, null, 3 / 7, 7, null, null]);
    expect(rows[7]).toEqual(['balanced accuracy', null, null, hand.balancedAccuracy, 7, null, null]);
    expect(rows[8]?.[0]).toBe('macro avg');
    expect(rows[9]?.[0]).toBe('weighted avg');
    const csv = toCsv(rows).split('\n');
    expect(csv[1]).toBe(`a,${2 / 3},${2 / 3},${4 / 6},3,,`);
    expect(csv[6]).toBe(`accuracy,,,${3 / 7},7,,`);
    expect(toCsv(confusionMatrixRows(hand.classes, hand.confusionMatrix)).split('\n').slice(0, 3)).toEqual([
      'true \\ predicted,a,b,c,d,e',
      'a,2,1,0,0,0',
      'b,0,1,0,1,0',
    ]);
  });

  it('escapes CSV cells that a spreadsheet would run as formulas, and quotes separators', () => {
    expect(toCsv([['=1+1', '+x', '-x', '@x', 'a,b', 'say "hi"', 'plain', -0.5, null]])).toBe(
      `'=1+1,'+x,'-x,'@x,"a,b","say ""hi""",plain,-0.5,\n`,
    );
  });
});

describe('ROC and AUC', () => {
  it('follows scikit-learn on its documented example', () => {
    // roc_curve([1, 1, 2, 2], [0.1, 0.4, 0.35, 0.8], pos_label=2):
    //   fpr [0, 0, 0.5, 0.5, 1], tpr [0, 0.5, 0.5, 1, 1], thresholds [inf, 0.8, 0.4, 0.35, 0.1]; AUC 0.75
    const pos = [false, false, true, true];
    const s = [0.1, 0.4, 0.35, 0.8];
    expect(rocCurve(pos, s)).toEqual({
      fpr: [0, 0, 0.5, 0.5, 1],
      tpr: [0, 0.5, 0.5, 1, 1],
      thresholds: [Infinity, 0.8, 0.4, 0.35, 0.1],
      positives: 2,
      negatives: 2,
    });
    expect(rocAuc(pos, s)).toBe(0.75);
  });

  it('counts a tie between a positive and a negative as one half', () => {
    // labels 1 0 1 0 1 0, scores .9 .9 .5 .5 .5 .1; P = N = 3, 9 (positive, negative) pairs:
    //   positive .9 vs negatives .9/.5/.1 → ½ + 1 + 1 = 2.5
    //   each positive .5 vs .9/.5/.1     → 0 + ½ + 1 = 1.5, twice = 3
    //   AUC = 5.5 / 9 = 11/18.
    // Trapezoids over thresholds .9 (tp 1, fp 1), .5 (tp 3, fp 2), .1 (tp 3, fp 3):
    //   2·P·N·AUC = (1−0)(1+0) + (2−1)(3+1) + (3−2)(3+3) = 11 → 11/18. Same.
    const pos = [true, false, true, false, true, false];
    const s = [0.9, 0.9, 0.5, 0.5, 0.5, 0.1];
    expect(rocAuc(pos, s)).toBe(11 / 18);
    const curve = rocCurve(pos, s);
    expect(curve?.fpr).toEqual([0, 1 / 3, 2 / 3, 1]);
    expect(curve?.tpr).toEqual([0, 1 / 3, 1, 1]);
    expect(curve?.thresholds).toEqual([Infinity, 0.9, 0.5, 0.1]);
  });

  it('gives ½ when every score ties, 1 and 0 for perfect and inverted rankings', () => {
    // One threshold: tp 2, fp 2 → (2−0)(2+0) / (2·2·2) = ½.
    expect(rocAuc([true, false, true, false], [0.3, 0.3, 0.3, 0.3])).toBe(0.5);
    expect(rocAuc([true, true, false], [0.9, 0.8, 0.1])).toBe(1);
    expect(rocAuc([true, true, false], [0.1, 0.2, 0.9])).toBe(0);
  });

  it('drops collinear intermediate points as scikit-learn does', () => {
    // labels 1 1 1 0, scores .9 .8 .7 .6: tps (1, 2, 3, 3), fps (0, 0, 0, 1). At .8 the second differences of
    // tps (3 − 4 + 1) and fps are 0, so that point is dropped; at .7 tps bends (3 − 6 + 2 = −1), kept.
    const pos = [true, true, true, false];
    const s = [0.9, 0.8, 0.7, 0.6];
    expect(rocCurve(pos, s)).toMatchObject({
      fpr: [0, 0, 0, 1],
      tpr: [0, 1 / 3, 1, 1],
      thresholds: [Infinity, 0.9, 0.7, 0.6],
    });
    expect(rocCurve(pos, s, { dropIntermediate: false })?.thresholds).toEqual([Infinity, 0.9, 0.8, 0.7, 0.6]);
  });

  it('is undefined without positives or without negatives', () => {
    expect(rocAuc([false, false], [0.1, 0.2])).toBeNull();
    expect(rocAuc([true, true], [0.1, 0.2])).toBeNull();
    expect(rocCurve([true, true], [0.1, 0.2])).toBeNull();
  });

  it('computes one-vs-rest AUCs on a multi-class hand case with ties and an absent class', () => {
    // classes a b c d; y_true a a b b c c (d absent)
    //   row      a    b    c    d
    //   0 (a)   .6   .2   .2   0
    //   1 (a)   .4   .4   .1   .1    ← a/b tie: argmax takes the first, a
    //   2 (b)   .4   .5   .1   0
    //   3 (b)   .2   .3   .5   0
    //   4 (c)   .2   .3   .5   0
    //   5 (c)   .1   .2   .6   .1
    // a: positives .6, .4 vs negatives .4 .2 .2 .1 → 4 + (½ + 3) = 7.5 of 8 → 15/16
    // b: positives .5, .3 vs negatives .2 .4 .3 .2 → 4 + (1 + 0 + ½ + 1) = 6.5 of 8 → 13/16
    // c: positives .5, .6 vs negatives .2 .1 .1 .5 → (3 + ½) + 4 = 7.5 of 8 → 15/16
    // d: no positives → undefined. macro AUC = (15 + 13 + 15) / 16 / 3 = 43/48.
    // y_pred = a a b c c c → recall a 2/2, b 1/2, c 2/2; balanced accuracy (1 + ½ + 1)/3 = 5/6; accuracy 5/6.
    const input = {
      classes: ['a', 'b', 'c', 'd'],
      y_true: [0, 0, 1, 1, 2, 2],
      y_prob: [
        [0.6, 0.2, 0.2, 0],
        [0.4, 0.4, 0.1, 0.1],
        [0.4, 0.5, 0.1, 0],
        [0.2, 0.3, 0.5, 0],
        [0.2, 0.3, 0.5, 0],
        [0.1, 0.2, 0.6, 0.1],
      ],
    };
    const predictions = parsePredictions(input);
    expect(predictions.yPred).toEqual([0, 0, 1, 2, 2, 2]);
    const report = classificationReport(predictions);
    expect(report.perClass.map((m) => m.auc)).toEqual([15 / 16, 13 / 16, 15 / 16, null]);
    expect(report.macroAuc).toBeCloseTo(43 / 48, 15);
    expect(report.aucUndefined).toEqual(['d']);
    expect(report.roc?.[3]).toBeNull();
    expect(report.roc?.[0]?.thresholds[0]).toBe(Infinity);
    expect(report.accuracy).toBeCloseTo(5 / 6, 15);
    expect(report.balancedAccuracy).toBeCloseTo(5 / 6, 15);
    // d: never predicted and never true → every ratio is 0/0.
    expect(report.zeroDivision).toEqual({ precision: ['d'], recall: ['d'], f1: ['d'] });
    const json = reportToJson(report) as {
      per_class: Record<string, { auc: number | null }>;
      macro_auc: number;
    };
    expect(json.per_class.d?.auc).toBeNull();
    expect(json.per_class.b?.auc).toBe(13 / 16);
    expect(Object.keys(json)).toEqual(
      expect.arrayContaining([
        'per_class',
        'accuracy',
        'balanced_accuracy',
        'macro_avg',
        'weighted_avg',
        'macro_auc',
        'confusion_matrix',
      ]),
    );
  });

  it('has no macro AUC when every class AUC is undefined', () => {
    // Only class 0 in y_true: class 0 has no negatives, classes 1 and 2 no positives.
    const ovr = oneVsRestRoc(
      [0, 0],
      [
        [0.5, 0.25, 0.25],
        [1, 0, 0],
      ],
      3,
    );
    expect(ovr.map((o) => o.auc)).toEqual([null, null, null]);
    const report = classificationReport({
      classes: ['x', 'y', 'z'],
      yTrue: [0, 0],
      yProb: [
        [0.5, 0.25, 0.25],
        [1, 0, 0],
      ],
    });
    expect(report.macroAuc).toBeNull();
    expect(report.aucUndefined).toEqual(['x', 'y', 'z']);
    expect(report.balancedAccuracy).toBe(1);
  });
});

describe('inputs', () => {
  const good = {
    classes: ['a', 'b'],
    y_true: [0, 1],
    y_prob: [
      [0.7, 0.3],
      [0.2, 0.8],
    ],
  };

  it('takes the first maximum on ties', () => {
    expect(argmax([0.3, 0.3, 0.4, 0.4])).toBe(2);
    expect(argmax([0.5, 0.5])).toBe(0);
  });

  it.each([
    [null, /expected an object/],
    [{ ...good, classes: 'ab' }, /classes must be an array/],
    [{ ...good, classes: ['a'] }, /at least 2 classes/],
    [{ ...good, classes: ['a', 'a'] }, /classes\[1\] "a" repeats classes\[0\]/],
    [{ ...good, y_true: [0, 2] }, /y_true\[1\] = 2 is not a class index \(an integer 0..1\)/],
    [{ ...good, y_true: [0, 0.5] }, /y_true\[1\] = 0.5/],
    [{ ...good, y_true: [] }, /y_true is empty/],
    [
      { ...good, y_prob: [[0.7, 0.3], [0.8]] },
      /y_prob\[1\] must hold 2 probabilities \(one per class\); got 1 values/,
    ],
    [
      {
        ...good,
        y_prob: [
          [0.7, 0.3],
          [0.2, 'x'],
        ],
      },
      /y_prob\[1\]\[1\] = "x" is not a probability/,
    ],
    [
      {
        ...good,
        y_prob: [
          [0.7, 0.3],
          [0.2, 0.3],
        ],
      },
      /y_prob\[1\] sums to 0.5/,
    ],
    [{ ...good, y_prob: [[0.7, 0.3]] }, /y_prob has 1 rows but y_true has 2 labels/],
    [{ classes: ['a', 'b'], y_true: [0, 1] }, /y_prob must be an array/],
    [{ ...good, y_pred: [0] }, /y_pred has 1 labels but y_true has 2/],
  ])('refuses %j, naming the field', (input, message) => {
    expect(() => parsePredictions(input)).toThrow(MetricsInputError);
    expect(() => parsePredictions(input)).toThrow(message);
  });

  it('uses y_pred when given, and y_prob only for AUC', () => {
    const p = parsePredictions({ ...good, y_pred: [1, 1] });
    expect(p.yPred).toEqual([1, 1]);
    expect(classificationReport(p).perClass.map((m) => m.auc)).toEqual([1, 1]);
  });
});

describe('formatFixed', () => {
  it('rounds like Python’s format(x, ".2f"): exact ties to even, everything else to nearest', () => {
    // 0.125, 0.375, 0.625, 0.875 are exact binary fractions: Python gives 0.12, 0.38, 0.62, 0.88.
    expect(['0.125', '0.375', '0.625', '0.875'].map((x) => formatFixed(Number(x), 2))).toEqual([
      '0.12',
      '0.38',
      '0.62',
      '0.88',
    ]);
    // 0.135 is stored as 0.13500000000000000888…, 0.145 as 0.14499999999999999001…
    expect(formatFixed(0.135, 2)).toBe('0.14');
    expect(formatFixed(0.145, 2)).toBe('0.14');
    expect(formatFixed(2 / 3, 2)).toBe('0.67');
    expect(formatFixed(1, 2)).toBe('1.00');
    expect(formatFixed(0, 2)).toBe('0.00');
    expect(formatFixed(0.5, 0)).toBe('0');
    expect(formatFixed(1.5, 0)).toBe('2');
    expect(formatFixed(2.5, 0)).toBe('2');
  });
});
