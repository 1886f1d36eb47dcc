"""PBX simulator: an AMI server that behaves like Asterisk, with a seeded traffic model.

Layout: `dialplan` reads extensions.conf/queues.conf; `core` is the clock,
channels, Local channel pairs, bridges and the dialplan runner (pure, no IO);
`apps` the dialplan applications and AsyncAGI commands; `app_queue` queues and
members; `actions` the AMI actions; `recording` MixMonitor's WAV files;
`transfer` attended transfers; `traffic` the seeded callers and agent
phones; `server` puts it on a socket
with a clock that can run faster than real time.

Fidelity is measured, not assumed: tests/test_simulator_fidelity.py runs every
recorded scenario of ../shared/ami-traces through the simulator with the
recording's own asterisk-etc/ and compares, per channel, the event names and
key fields, the HoldTime/TalkTime values, the queue_log lines, the CDR rows
(cdr_csv's Master.csv, with newcdrcolumns: `Sim(cdr=...)`, `build(cdr=...)`)
and the action responses. All of them agree today. The real-PBX tier (tests/test_realpbx.py,
`*_on_both_pbxs`) runs its scenarios on the real Asterisk and on the simulator
at once, with contrib/asterisk and the same actions, and compares the same
(VarSets and AgentComplete as multisets: their order against a channel's
other events races in Asterisk from one run to the next).

Followed after that comparison: Originate's variables set on ;1 last first;
global Setvar's VarSet (Channel none); no VarSet for a function written by
Set/Setvar/SET VARIABLE (TIMEOUT(absolute)); MusicOnHoldStart/Stop around a
queue's wait where the music files exist (`Sim.moh`); Dial()'s DIAL* variables
and AppDial's outgoing-line events; a caller still ringing (a call back waiting
as a Local channel) answered by app_queue's connect; the causes of an AMI
Hangup (SoftHangupRequest 16, Hangup 0), of AGI HANGUP (32, then 16 when the
AGI ends, Hangup 0) and the cause a Local partner is told; ExecIf, IF() and
nested ${...} substitution; PlayTones (no audio here); Dial()'s outgoing ;1
leg named after the calling channel's extension (CallerIDNum and Exten; Exten
empty once it answers); AGI's SET MUSIC (MusicOnHoldStart/Stop, stopped
when Dial rings and at a hang-up); an EXEC cut by a hang-up still answered
(-1); Dial's legs given up on (NOANSWER/CANCEL) hung up with no cause; a
prompt's length is its file's where `Sim.sounds` names Asterisk's sounds
folders, and a missing file answers STREAM FILE/GET DATA with -1 (Playback and
Background set FAILED); any AGI command that plays a file stops SET MUSIC's
music for good; digits keyed while no AGI command reads them are dropped
(`Sim.drop_unread_digits`, on in the real-PBX tier; off by default, where
they wait for the next command that reads, so a sped-up clock, which
multiplies the engine's latency, does not lose callers' keys).

Scenarios the real-PBX tier runs on Asterisk alone, and why:
- transfers: not yet alike (below);
- the IVR's guard (callers reaching the fallback when the engine stops or
  dies, a user's own queue context clearing it): no TIMEOUT(absolute) here;
- recordings (start at the answer, pause, resume, opt-out, a pause after a
  hold) and hold itself: the tier checks the audio Asterisk wrote (silence
  where muted, MUTEAUDIO both ways), which the simulator does not make;
- ChanSpy listen/whisper/barge: the tier checks what each party hears (audio);
- a cut AMI link and `core restart`: the simulator has no restart, and the
  link tests are about the engine's resync (tests/test_client.py runs them on
  the simulator's recordings).

Known differences from Asterisk (not hidden, not yet needed):
- Transfers (tried side by side, not yet alike): Asterisk's BlindTransfer and
  Atxfer set BLINDTRANSFER / ATTENDEDTRANSFER / TRANSFERERNAME /
  TRANSFER_CONTEXT, put the transferee on Hold/Unhold, dial the Atxfer target
  as DTMF on the transferer (DTMFEnd per digit) and merge the bridges
  (BridgeMerge); inherited `__` variables are VarSet on every new leg. The
  simulator dials the target with a DialBegin and swaps bridges. The
  queue_log lines (BLINDTRANSFER, ATTENDEDTRANSFER) and the AttendedTransfer
  result agree; the tier checks transfers on Asterisk alone.
- CDR: one row per channel that ran dialplan or was originated, written at its
  hang-up, its dstchannel the newer channel of its last bridge; Asterisk forks
  a channel's CDR at a transfer or a second bridge (several rows, one per
  party B) and has BUSY/FAILED/CONGESTION dispositions (here ANSWERED or NO
  ANSWER).
- No CEL, Cdr, DeviceStateChange or security events (SuccessfulAuth,
  RequestBadFormat); AMI read/write classes are not enforced per user.
- Only Local channels are originated and dialed; simulated callers and phones
  are Local channels, as in the recordings. No SIP/PJSIP endpoints.
- Events of different channels at the same instant can interleave in another
  order than Asterisk's threads produce (the recordings differ among
  themselves there too); OriginateResponse always follows DialEnd.
- Originate: answered (Reason 4), rang out (3, no DialEnd, cause 19), hung up
  before answering (0 at once, DialEnd by the cause) and no such
  extension/context (0, queued first) as Asterisk 22 answers them; no Busy()
  or Congestion() (Asterisk's Reasons 5 and 8), and a missing extension
  creates no Local pair (Asterisk makes one and hangs it up at once).
- Dest* fields of AgentCalled/DialBegin show the channel as it is, where
  Asterisk's cache sometimes shows an older snapshot.
- Timings are the recordings' typical ones (Answer 500 ms, SendDTMF 100 ms
  digits 450 ms apart, AsyncAGI picking up a command after 100 ms, then 20 ms),
  without Asterisk's jitter.
- app_queue: strategies ringall, leastrecent, fewestcalls, random, rrmemory,
  linear; penalties, ring timeout, retry, wrap-up, maxlen, pause with reason.
  No weight, autopause, announcements, joinempty/leavewhenempty rules or
  Queue() options; member Status is 1 (not in use), 2 (in use) or 4 (invalid).
- Atxfer completes when the transferer hangs up (no DTMF transfer features, so
  no feature code is needed and no transfer announcement can swallow the
  target's digits, as it does on Asterisk: contrib's features.conf has none);
- AgentComplete says the agent hung up whichever half of a Local member is hung
  up; Asterisk says COMPLETECALLER when the ;1 half (the one in the queue's
  bridge) is hung up over AMI (the panel hangs up the ;2 half, the phone);
- No TIMEOUT(absolute): the guard of contrib's [callcenter-ivr] never fires
  here (tests/test_realpbx.py checks it on Asterisk);
  Hold/Unhold come from the simulated agent phones (PhoneHold), raised on
  the agent's line with MusicOnHoldStart/Stop for the peer.
- MixMonitor writes a synthetic voice-band signal (there is no audio), silent
  where muted; the mute Direction is taken as both.
- Dialplan syntax: contexts, exten/same, n and labels, [globals], patterns
  (X Z N [..] . !), ${VAR}, ${RAND(a,b)}, ${SIM_DRAW(name)} (the simulator's
  traffic model) and $[...] comparisons; no includes, hints, Gosub or macros.
"""
