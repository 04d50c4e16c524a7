// OsteonLive.subscribe(topic, handler): live events from the shell over one websocket per page.
// handler(event) gets each event published to `topic`; handler.onError(error), if set, gets a
// refusal ({code, topic, message}); handler.onSubscribed(), if set, runs after each
// (re)subscription: events published while the socket was down are not replayed, so fetch the
// current state there. The socket reconnects with backoff and resubscribes.
// Returns a function that unsubscribes this handler.
(function () {
  "use strict";
  var handlers = {};        // topic -> array of handlers
  var socket = null;
  var delayMs = 500;        // backoff: doubles up to maxDelayMs, reset once connected
  var maxDelayMs = 15000;
  var stopped = false;      // the server refused the connection as not signed in: stay quiet
  var retry = null;         // the pending reconnect's timer

  function url() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + "/ws/live/";
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function connect() {
    retry = null;
    if (stopped) return;
    socket = new WebSocket(url());
    socket.onopen = function () {
      delayMs = 500;
      Object.keys(handlers).forEach(function (topic) { send({ subscribe: topic }); });
    };
    socket.onmessage = function (message) {
      var frame = JSON.parse(message.data);
      if (frame.error) {
        (handlers[frame.error.topic] || []).forEach(function (h) { if (h.onError) h.onError(frame.error); });
        return;
      }
      if (frame.subscribed !== undefined) {
        (handlers[frame.subscribed] || []).forEach(function (h) { if (h.onSubscribed) h.onSubscribed(); });
        return;
      }
      if (frame.topic !== undefined) {
        (handlers[frame.topic] || []).forEach(function (h) { h(frame.event); });
      }
    };
    socket.onclose = function (closed) {
      socket = null;
      if (closed.code === 4401) { stopped = true; return; }
      if (!Object.keys(handlers).length) return;
      retry = setTimeout(connect, delayMs * (0.75 + Math.random() / 2));
      delayMs = Math.min(delayMs * 2, maxDelayMs);
    };
  }

  function subscribe(topic, handler) {
    (handlers[topic] = handlers[topic] || []).push(handler);
    // asked again for a topic already held: the server confirms, so this handler's
    // onSubscribed runs too
    if (socket) send({ subscribe: topic });
    else if (retry === null) connect();  // else the pending reconnect subscribes it
    return function unsubscribe() {
      var list = handlers[topic] || [];
      var at = list.indexOf(handler);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0 && handlers[topic]) {
        delete handlers[topic];
        send({ unsubscribe: topic });
      }
    };
  }

  window.OsteonLive = { subscribe: subscribe };
})();
