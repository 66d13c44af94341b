// localize: watches what a recording measures and says when and where
// something changed.
//
// Today this stage is the streaming anomaly detector (issue 6):
//   - UnivariateDetector (univariate_detector.h): one series, O(1) per point,
//     robust baseline + SPOT thresholds (spot_threshold.h); spikes, dips,
//     level shifts, variance increases; slow drift is absorbed.
//   - StackMixDetector (stack_mix_detector.h): the mix of stacks of an
//     interval against the usual mix, with each stack's contribution.
//   - IntervalMonitor (interval_monitor.h): what `stackwatch record` calls
//     once per interval; watches every stack, function, process and load
//     series and the mix, returns explained anomalies and labels stacks.
//   - intervals.jsonl (interval_log.h, json_lines.h): the per-interval log a
//     recording keeps so `stackwatch detect DIR` can replay it.
//   - series CSV (series_csv.h): `stackwatch detect FILE.csv`.
//
// What it does not do: sample, symbolize or write stacks.json (earlier
// stages); rank suspect functions on the call graph, plan probes or give
// root-cause hints (the localizer, to come in this folder); model seasonality.
#pragma once

#include "localize/interval_log.h"
#include "localize/interval_monitor.h"
#include "localize/json_lines.h"
#include "localize/series_csv.h"
#include "localize/spot_threshold.h"
#include "localize/stack_mix_detector.h"
#include "localize/univariate_detector.h"
