// Quality dashboard charts: sparklines on indicator cards ([data-spark]), the funnel plot with
// binomial control limits ([data-funnel]) and the network map ([data-map]: institutions placed
// by longitude/latitude on an outline generated from them; no map tiles, nothing fetched).
import * as echarts from 'echarts/core';
import { LineChart, ScatterChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, ScatterChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

const COLOURS = { alarm: '#b42318', warning: '#e0a100', ok: '#1a7f37', no_data: '#98a2b3' };

function json(id) {
  const source = document.getElementById(id);
  return source ? JSON.parse(source.textContent) : null;
}

function sparklines() {
  const data = json('quality-sparklines');
  const months = json('quality-trend-months') || [];
  if (!data) return;
  for (const element of document.querySelectorAll('[data-spark]')) {
    const values = data[element.dataset.spark];
    if (!values || values.every((v) => v === null)) continue;
    const status = element.closest('[data-status]')?.dataset.status || 'no_data';
    const chart = echarts.init(element);
    chart.setOption({
      animation: false,
      grid: { left: 2, right: 2, top: 4, bottom: 4 },
      xAxis: { type: 'category', show: false, data: months },
      yAxis: { type: 'value', show: false, scale: true },
      tooltip: { trigger: 'axis', confine: true },
      series: [{ type: 'line', data: values, symbol: 'circle', symbolSize: 4, connectNulls: false, itemStyle: { color: COLOURS[status] }, lineStyle: { width: 2, color: COLOURS[status] } }],
    });
    element.dataset.rendered = 'true';
  }
}

function funnel() {
  const element = document.querySelector('[data-funnel]');
  if (!element) return;
  const data = json(element.dataset.funnel);
  if (!data || data.p === null) return;
  const d = element.dataset;
  const line = (name, index, dash) => ({
    name, type: 'line', symbol: 'none', data: data.curve.map((c) => [c[0], c[index]]),
    lineStyle: { type: dash, color: index > 2 ? '#b42318' : '#e0a100' },
  });
  const top = Math.max(...data.curve.map((c) => c[0]), 1);
  const chart = echarts.init(element);
  chart.setOption({
    animation: false,
    tooltip: { trigger: 'item', formatter: (p) => (p.seriesType === 'scatter' ? `${p.value[2]}<br>${d.labelN}: ${p.value[0]}<br>${d.labelValue}: ${(p.value[1] * 100).toFixed(1)} %` : p.seriesName) },
    legend: { top: 0 },
    grid: { left: 56, right: 24, top: 40, bottom: 40 },
    xAxis: { type: 'value', name: d.labelN, nameLocation: 'middle', nameGap: 26, min: 0 },
    yAxis: { type: 'value', name: d.labelValue, min: 0, max: 1 },
    series: [
      { name: d.labelP, type: 'line', symbol: 'none', data: [[0, data.p], [top, data.p]], lineStyle: { color: '#0b5c7a' } },
      line(d.labelL95, 1, 'dashed'), { ...line(d.labelL95, 2, 'dashed') },
      line(d.labelL998, 3, 'solid'), { ...line(d.labelL998, 4, 'solid') },
      { name: '', type: 'scatter', data: data.points, symbolSize: 10, itemStyle: { color: '#1d2939' } },
    ],
  });
  element.dataset.rendered = 'true';
}

function map() {
  const element = document.querySelector('[data-map]');
  if (!element) return;
  const data = json(element.dataset.map);
  if (!data) return;
  const d = element.dataset;
  const labels = { alarm: d.labelAlarm, warning: d.labelWarning, ok: d.labelOk, no_data: d.labelNoData };
  const lons = data.points.map((p) => p.value[0]).concat(data.frame.map((f) => f[0]));
  const lats = data.points.map((p) => p.value[1]).concat(data.frame.map((f) => f[1]));
  const series = [{ name: 'outline', type: 'line', data: data.frame, symbol: 'none', silent: true, lineStyle: { color: '#98a2b3', width: 1.5 }, areaStyle: null }];
  for (const status of ['ok', 'no_data', 'warning', 'alarm']) {
    series.push({
      name: labels[status],
      type: 'scatter',
      data: data.points.filter((p) => p.status === status).map((p) => ({ name: p.name, value: p.value, url: p.url, level: p.level, alarms: p.alarms, warnings: p.warnings })),
      symbolSize: (v, p) => (p.data.level === 'center' ? 20 : p.data.level === 'county' ? 14 : 9),
      itemStyle: { color: COLOURS[status], borderColor: '#fff', borderWidth: 1 },
      label: { show: true, formatter: (p) => (p.data.level === 'township' ? '' : p.name.replace(/人民医院$/, '')), position: 'right', fontSize: 11 },
    });
  }
  const chart = echarts.init(element);
  chart.setOption({
    animation: false,
    legend: { top: 0, data: ['ok', 'no_data', 'warning', 'alarm'].map((s) => labels[s]) },
    tooltip: { trigger: 'item', formatter: (p) => (p.seriesType === 'scatter' ? `${p.name}<br>${p.seriesName} · ${d.labelAlarm} ${p.data.alarms} · ${d.labelWarning} ${p.data.warnings}` : '') },
    grid: { left: 40, right: 40, top: 36, bottom: 24 },
    xAxis: { type: 'value', min: Math.min(...lons) - 0.05, max: Math.max(...lons) + 0.05, show: false },
    yAxis: { type: 'value', min: Math.min(...lats) - 0.05, max: Math.max(...lats) + 0.05, show: false },
    series,
  });
  chart.on('click', (p) => { if (p.data && p.data.url) window.location.assign(p.data.url); });
  element.dataset.rendered = 'true';
}

function start() {
  sparklines();
  funnel();
  map();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
