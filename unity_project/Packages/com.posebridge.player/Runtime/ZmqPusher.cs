// The ZeroMQ PUSH side of the protocol on its own thread (NetMQ sockets are not thread-safe and must
// not live on Unity's main thread). A bounded queue between the frame pipeline and the socket gives
// back-pressure: when the collector is slow, the socket's high-water mark fills, the queue fills, and
// the player stops starting frames instead of dropping them. Shutdown follows the NetMQ-in-Unity rules:
// dispose every socket first, then NetMQConfig.Cleanup(false), or quitting hangs (netmq #684).
using System;
using System.Collections.Concurrent;
using System.Threading;
using NetMQ;
using NetMQ.Sockets;
using UnityEngine;

namespace PoseBridge.Runtime
{
    public sealed class ZmqPusher : IDisposable
    {
        readonly string endpoint;
        readonly BlockingCollection<byte[][]> queue;
        readonly Thread thread;
        readonly int sendHighWatermark;
        readonly byte[] curveServerKey;
        volatile bool stopRequested;
        long messagesSent;
        string failure;

        /// <param name="endpoint">The collector's PULL endpoint, e.g. tcp://127.0.0.1:5555.</param>
        /// <param name="capacity">Messages that may wait for the socket; Enqueue blocks beyond it.</param>
        /// <param name="curveServerKey">The collector's CurveZMQ public key (32 bytes), or null for none.</param>
        public ZmqPusher(string endpoint, int capacity = 64, int sendHighWatermark = 256, byte[] curveServerKey = null)
        {
            this.endpoint = endpoint;
            this.sendHighWatermark = sendHighWatermark;
            this.curveServerKey = curveServerKey;
            queue = new BlockingCollection<byte[][]>(new ConcurrentQueue<byte[][]>(), capacity);
            thread = new Thread(Run) { Name = "posebridge-zmq-push", IsBackground = true };
            thread.Start();
        }

        public long MessagesSent => Interlocked.Read(ref messagesSent);
        public int Pending => queue.Count;
        public bool HasRoom => queue.Count < queue.BoundedCapacity;
        public string Failure => failure;

        /// <summary>Queues a multipart message ([header] or [header, image]); blocks while the queue is full.</summary>
        public bool Enqueue(byte[][] parts, int timeoutMs = Timeout.Infinite)
        {
            if (failure != null) throw new InvalidOperationException("ZeroMQ pusher failed: " + failure);
            return queue.TryAdd(parts, timeoutMs);
        }

        void Run()
        {
            PushSocket socket = null;
            try
            {
                // NetMQ's async IO layer must use .NET sockets under Unity's Mono before any socket exists.
                AsyncIO.ForceDotNet.Force();
                socket = new PushSocket();
                socket.Options.SendHighWatermark = sendHighWatermark;
                socket.Options.Linger = TimeSpan.FromSeconds(5);
                if (curveServerKey != null)
                {
                    socket.Options.CurveServerKey = curveServerKey;
                    socket.Options.CurveCertificate = new NetMQCertificate();
                }
                socket.Connect(endpoint);
                foreach (byte[][] parts in queue.GetConsumingEnumerable())
                {
                    // Retry while the collector is away: the high-water mark holds us back, nothing is dropped.
                    while (!socket.TrySendMultipartBytes(TimeSpan.FromMilliseconds(200), parts))
                    {
                        if (stopRequested) return;
                    }
                    Interlocked.Increment(ref messagesSent);
                }
            }
            catch (Exception e)
            {
                failure = e.GetType().Name + ": " + e.Message;
                Debug.LogError("posebridge: ZeroMQ pusher failed: " + e);
            }
            finally
            {
                socket?.Dispose();
            }
        }

        /// <summary>
        /// Sends what is queued (up to <paramref name="drainTimeoutMs"/>), then closes the socket. Call once,
        /// after the last message; then call <see cref="Cleanup"/> once every pusher is disposed.
        /// </summary>
        public void Dispose() => Close(10000);

        public void Close(int drainTimeoutMs)
        {
            if (!queue.IsAddingCompleted) queue.CompleteAdding();
            if (!thread.Join(drainTimeoutMs))
            {
                stopRequested = true;
                thread.Join(2000);
            }
        }

        /// <summary>Tears down NetMQ's context without blocking; only after every socket is disposed.</summary>
        public static void Cleanup() => NetMQConfig.Cleanup(false);
    }
}
