// Learning curves: each element with data-curves="<json id>" and data-curve-index="<i>" gets a
// line chart of that curve's scores over time (with the pass line), and, with
// data-with-metrics="true", one series per metric (toggled from the legend).
import * as echarts from 'echarts/core';
import { LineChart } from 'echarts/charts';
import {
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, GridComponent, LegendComponent, MarkLineComponent, TooltipComponent, CanvasRenderer]);

function render(element, curves) {
  const curve = curves[Number(element.dataset.curveIndex)];
  if (!curve) return;
  const scoreName = element.dataset.labelScore || 'score';
  const series = [{
    name: scoreName,
    type: 'line',
    yAxisIndex: 0,
    data: curve.points,
    symbolSize: 7,
    markLine: {
      symbol: 'none',
      label: { formatter: `${element.dataset.labelThreshold || ''} ${curve.min_score}` },
      lineStyle: { type: 'dashed', color: '#b42318' },
      data: [{ yAxis: curve.min_score }],
    },
  }];
  const selected = {};
  if (element.dataset.withMetrics === 'true') {
    for (const metric of curve.metrics || []) {
      series.push({ name: metric.name, type: 'line', yAxisIndex: 1, data: metric.points });
      selected[metric.name] = false;
    }
  }
  const chart = echarts.init(element);
  chart.setOption({
    animation: false,
    tooltip: { trigger: 'axis' },
    legend: { type: 'scroll', top: 0, selected },
    grid: { left: 48, right: 56, top: 40, bottom: 32 },
    xAxis: { type: 'time' },
    yAxis: [
      { type: 'value', min: 0, max: 100, name: scoreName },
      { type: 'value', scale: true, splitLine: { show: false } },
    ],
    series,
  });
  element.dataset.rendered = 'true';
  window.addEventListener('resize', () => chart.resize());
}

function start() {
  for (const element of document.querySelectorAll('[data-curves]')) {
    const source = document.getElementById(element.dataset.curves);
    if (!source) continue;
    render(element, JSON.parse(source.textContent));
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start);
} else {
  start();
}
