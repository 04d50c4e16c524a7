// Two-way voice in a live session: WebRTC audio between the browsers (a mesh: one connection
// per other participant), signalled through the shell's socket /ws/live/sessions/<id>/voice/
// (clinical_shell/live/voice.py). The one already in the call offers to the newcomer.
// window.osteonVoice: read-only state for tests (peers, inbound/outbound audio byte counts).
(function () {
  "use strict";

  function start() {
    const root = document.getElementById("live-voice");
    if (!root) return;
    const t = root.dataset;
    const joinButton = document.getElementById("live-voice-join");
    const muteButton = document.getElementById("live-voice-mute");
    const leaveButton = document.getElementById("live-voice-leave");
    const status = document.getElementById("live-voice-status");
    const list = document.getElementById("live-voice-peers");
    const peers = new Map(); // peer id -> {pc, name, item, audio, pending: [candidates]}
    let socket = null;
    let me = null;
    let maxPeers = 6;
    let iceServers = [];
    let micStream = null;
    let muted = false;
    let wanted = false; // the user asked to be in the call (reconnect while true)

    if (!window.RTCPeerConnection || !navigator.mediaDevices) {
      joinButton.disabled = true;
      status.textContent = t.textUnsupported;
      return;
    }

    function say(text) { status.textContent = text; }

    function send(frame) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
    }

    function peerItem(id, name) {
      const item = document.createElement("li");
      item.dataset.peer = id;
      item.dataset.state = "connecting";
      const who = document.createElement("span");
      who.textContent = name;
      const state = document.createElement("span");
      state.className = "muted";
      state.dataset.role = "state";
      state.textContent = " · " + t.textConnecting;
      item.append(who, state);
      list.append(item);
      return item;
    }

    function setState(peer, state, text) {
      peer.item.dataset.state = state;
      peer.item.querySelector("[data-role=state]").textContent = " · " + text;
    }

    function connection(id, name) {
      let peer = peers.get(id);
      if (peer) return peer;
      const pc = new RTCPeerConnection({ iceServers: iceServers });
      const audio = document.createElement("audio");
      audio.autoplay = true;
      peer = { pc: pc, name: name, item: peerItem(id, name), audio: audio, pending: [], muted: false };
      peer.item.append(audio);
      peers.set(id, peer);
      for (const track of micStream.getAudioTracks()) pc.addTrack(track, micStream);
      pc.onicecandidate = function (event) {
        if (!event.candidate) return;
        send({
          type: "signal", to: id, kind: "candidate",
          candidate: event.candidate.candidate,
          sdp_mid: event.candidate.sdpMid,
          sdp_mline_index: event.candidate.sdpMLineIndex,
        });
      };
      pc.ontrack = function (event) {
        audio.srcObject = event.streams[0] || new MediaStream([event.track]);
        audio.play().catch(function () { /* plays once the page has been clicked */ });
      };
      pc.onconnectionstatechange = function () {
        if (pc.connectionState === "connected") {
          setState(peer, "connected", peer.muted ? t.textMuted : t.textConnected);
        } else if (pc.connectionState === "failed") {
          setState(peer, "failed", t.textFailed);
        }
      };
      return peer;
    }

    function hangUp(id) {
      const peer = peers.get(id);
      if (!peer) return;
      peer.pc.close();
      peer.audio.srcObject = null;
      peer.item.remove();
      peers.delete(id);
    }

    async function addCandidates(peer) {
      if (!peer.pc.remoteDescription) return;
      for (const c of peer.pending.splice(0)) {
        try { await peer.pc.addIceCandidate(c); } catch (e) { /* a stale candidate */ }
      }
    }

    async function onSignal(frame) {
      const from = frame.from;
      if (frame.kind === "full") {
        // someone already in the call has no room for this page: leave, say why
        leave(t.textFull);
        return;
      }
      const peer = connection(from, frame.name);
      if (frame.kind === "offer") {
        await peer.pc.setRemoteDescription({ type: "offer", sdp: frame.sdp });
        await peer.pc.setLocalDescription(await peer.pc.createAnswer());
        send({ type: "signal", to: from, kind: "answer", sdp: peer.pc.localDescription.sdp });
        await addCandidates(peer);
      } else if (frame.kind === "answer") {
        await peer.pc.setRemoteDescription({ type: "answer", sdp: frame.sdp });
        await addCandidates(peer);
      } else if (frame.kind === "candidate") {
        peer.pending.push({
          candidate: frame.candidate, sdpMid: frame.sdp_mid, sdpMLineIndex: frame.sdp_mline_index,
        });
        await addCandidates(peer);
      }
    }

    async function onJoined(frame) {
      if (peers.size >= maxPeers - 1) {
        send({ type: "signal", to: frame.peer, kind: "full" });
        return;
      }
      const peer = connection(frame.peer, frame.name);
      await peer.pc.setLocalDescription(await peer.pc.createOffer());
      send({ type: "signal", to: frame.peer, kind: "offer", sdp: peer.pc.localDescription.sdp });
      if (muted) send({ type: "mute", muted: true });
    }

    function onMessage(event) {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "welcome") {
        me = frame.peer;
        maxPeers = frame.max_peers;
        iceServers = frame.ice_servers;
        say(t.textJoined);
      } else if (frame.type === "joined") {
        onJoined(frame).catch(function (e) { say(String(e)); });
      } else if (frame.type === "left") {
        hangUp(frame.peer);
      } else if (frame.type === "signal") {
        onSignal(frame).catch(function (e) { say(String(e)); });
      } else if (frame.type === "muted") {
        const peer = peers.get(frame.peer);
        if (peer) {
          peer.muted = frame.muted;
          setState(peer, peer.item.dataset.state, frame.muted ? t.textMuted : t.textConnected);
        }
      } else if (frame.type === "error") {
        say(frame.message);
      }
    }

    function openSocket() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      socket = new WebSocket(scheme + location.host + t.url);
      socket.onmessage = onMessage;
      socket.onclose = function (event) {
        for (const id of Array.from(peers.keys())) hangUp(id);
        if (!wanted) return;
        if (event.code === 4401 || event.code === 4403) {
          leave(t.textRefused);
          return;
        }
        say(t.textReconnecting);
        setTimeout(function () { if (wanted) openSocket(); }, 2000);
      };
    }

    async function join() {
      joinButton.disabled = true;
      say(t.textJoining);
      try {
        micStream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
          video: false,
        });
      } catch (e) {
        joinButton.disabled = false;
        say(t.textNoMic + (e && e.message ? e.message : String(e)));
        return;
      }
      wanted = true;
      muted = false;
      joinButton.hidden = true;
      muteButton.hidden = false;
      leaveButton.hidden = false;
      openSocket();
    }

    function leave(why) {
      wanted = false;
      if (socket) socket.close();
      socket = null;
      for (const id of Array.from(peers.keys())) hangUp(id);
      if (micStream) for (const track of micStream.getTracks()) track.stop();
      micStream = null;
      joinButton.hidden = false;
      joinButton.disabled = false;
      muteButton.hidden = true;
      muteButton.setAttribute("aria-pressed", "false");
      muteButton.textContent = t.textMute;
      leaveButton.hidden = true;
      say(why || t.textLeft);
    }

    function toggleMute() {
      muted = !muted;
      for (const track of micStream.getAudioTracks()) track.enabled = !muted;
      muteButton.setAttribute("aria-pressed", String(muted));
      muteButton.textContent = muted ? t.textUnmute : t.textMute;
      send({ type: "mute", muted: muted });
    }

    joinButton.addEventListener("click", join);
    leaveButton.addEventListener("click", function () { leave(); });
    muteButton.addEventListener("click", toggleMute);

    async function stats() {
      const out = {};
      for (const [id, peer] of peers) {
        const row = { name: peer.name, state: peer.pc.connectionState, received: 0, sent: 0 };
        const report = await peer.pc.getStats();
        report.forEach(function (s) {
          if (s.type === "inbound-rtp" && s.kind === "audio") row.received += s.bytesReceived || 0;
          if (s.type === "outbound-rtp" && s.kind === "audio") row.sent += s.bytesSent || 0;
        });
        out[id] = row;
      }
      return out;
    }
    window.osteonVoice = {
      me: function () { return me; },
      peers: function () { return Array.from(peers.keys()); },
      stats: stats,
    };
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
