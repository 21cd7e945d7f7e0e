// Frames after rendering: GPU readback -> (worker thread) JPEG/PNG/raw encoding, CRC-32, header JSON ->
// the ZeroMQ pusher. One worker thread does the encoding so that sequence numbers follow send order;
// control messages (hello, heartbeat, end, error) go through the same worker for the same reason.
using System;
using System.Collections.Concurrent;
using System.Threading;
using PoseBridge.Core;
using Unity.Collections;
using UnityEngine;
using UnityEngine.Experimental.Rendering;
using UnityEngine.Rendering;

namespace PoseBridge.Runtime
{
    public sealed class FramePipeline : IDisposable
    {
        readonly ZmqPusher pusher;
        readonly BlockingCollection<Action> work;
        readonly Thread worker;
        readonly string encoding;
        readonly int jpegQuality;
        long seq;
        long framesSent;
        long framesFailed;
        int readbacksInFlight;
        volatile string failure;

        public FramePipeline(ZmqPusher pusher, string encoding, int jpegQuality, int capacity = 8)
        {
            this.pusher = pusher;
            this.encoding = encoding;
            this.jpegQuality = jpegQuality;
            work = new BlockingCollection<Action>(new ConcurrentQueue<Action>(), capacity);
            worker = new Thread(Run) { Name = "posebridge-encode", IsBackground = true };
            worker.Start();
        }

        public long FramesSent => Interlocked.Read(ref framesSent);

        /// <summary>Frames whose readback failed (reported with an error message, not sent).</summary>
        public long FramesFailed => Interlocked.Read(ref framesFailed);
        public string Failure => failure ?? pusher.Failure;

        /// <summary>True when another frame may start without overrunning the bounded queues.</summary>
        public bool CanAccept(int maxReadbacks) =>
            Failure == null && Volatile.Read(ref readbacksInFlight) < maxReadbacks && work.Count < work.BoundedCapacity && pusher.HasRoom;

        /// <summary>Queues a control message; it gets the next sequence number when the worker sends it.</summary>
        public void SendControl(Envelope message)
        {
            work.Add(() =>
            {
                message.Seq = seq++;
                pusher.Enqueue(new[] { message.Encode() });
            });
        }

        /// <summary>
        /// Reads back <paramref name="target"/> (the frame's render) without stalling the GPU, then encodes
        /// and sends it with <paramref name="header"/> (complete but for Seq and Image).
        /// </summary>
        public void Capture(RenderTexture target, FrameHeader header)
        {
            Interlocked.Increment(ref readbacksInFlight);
            int width = target.width, height = target.height;
            AsyncGPUReadback.Request(target, 0, TextureFormat.RGB24, request =>
            {
                Interlocked.Decrement(ref readbacksInFlight);
                if (request.hasError)
                {
                    Interlocked.Increment(ref framesFailed);
                    SendControl(new ErrorMessage
                    {
                        RunId = header.RunId, PlayerId = header.PlayerId, Code = "readback_failed",
                        Message = "AsyncGPUReadback failed", Fatal = false, FrameId = header.FrameId,
                    });
                    return;
                }
                // The NativeArray is only valid inside this callback: copy it out for the worker.
                NativeArray<byte> data = request.GetData<byte>();
                var pixels = new byte[data.Length];
                data.CopyTo(pixels);
                work.Add(() => EncodeAndSend(header, pixels, width, height));
            });
        }

        void EncodeAndSend(FrameHeader header, byte[] pixels, int width, int height)
        {
            // Readback rows run bottom to top (Unity's texture layout); the encoders expect that layout
            // and write upright images, while raw frames must be top to bottom (docs/protocol.md).
            byte[] image;
            if (encoding == "jpeg")
                image = ImageConversion.EncodeArrayToJPG(pixels, GraphicsFormat.R8G8B8_SRGB, (uint)width, (uint)height, 0, jpegQuality);
            else if (encoding == "png")
                image = ImageConversion.EncodeArrayToPNG(pixels, GraphicsFormat.R8G8B8_SRGB, (uint)width, (uint)height, 0);
            else
                image = FlipRows(pixels, width * 3, height);
            header.Image = ImageInfo.Describe(encoding, width, height, 3, image, image.Length);
            header.Seq = seq++;
            pusher.Enqueue(new[] { header.Encode(), image });
            Interlocked.Increment(ref framesSent);
        }

        static byte[] FlipRows(byte[] src, int rowBytes, int rows)
        {
            var dst = new byte[src.Length];
            for (int y = 0; y < rows; y++) Buffer.BlockCopy(src, (rows - 1 - y) * rowBytes, dst, y * rowBytes, rowBytes);
            return dst;
        }

        void Run()
        {
            try
            {
                foreach (Action a in work.GetConsumingEnumerable()) a();
            }
            catch (Exception e)
            {
                failure = e.GetType().Name + ": " + e.Message;
                Debug.LogError("posebridge: frame pipeline failed: " + e);
            }
        }

        /// <summary>Waits for readbacks and queued work, then closes the pusher (which drains the socket).</summary>
        public void Dispose()
        {
            AsyncGPUReadback.WaitAllRequests();
            work.CompleteAdding();
            worker.Join(30000);
            pusher.Dispose();
        }
    }
}
