// The ML-Agents side channel that carries the run config (Python -> player) and the player's status
// (player -> Python) as UTF-8 JSON. Its GUID is shared with bridge/mlagents_channels.py
// (CONFIG_CHANNEL_ID); messages travel only inside a reset/step exchange, which the GeneratorAgent's
// decision requests keep going.
using System;
using System.Text;
using Unity.MLAgents.SideChannels;

namespace PoseBridge.Runtime
{
    public sealed class GeneratorConfigChannel : SideChannel
    {
        /// <summary>bridge/mlagents_channels.py CONFIG_CHANNEL_ID.</summary>
        public const string ChannelGuid = "8f0c4b6e-3d2a-4e71-9b15-5a7d2c9e1f40";

        static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);

        /// <summary>Raised on the main thread with each JSON message Python sends.</summary>
        public event Action<string> MessageReceived;

        public GeneratorConfigChannel()
        {
            ChannelId = new Guid(ChannelGuid);
        }

        protected override void OnMessageReceived(IncomingMessage msg)
        {
            string json;
            try
            {
                json = Utf8.GetString(msg.GetRawBytes());
            }
            catch (ArgumentException e)
            {
                UnityEngine.Debug.LogError("posebridge: config message is not UTF-8: " + e.Message);
                return;
            }
            MessageReceived?.Invoke(json);
        }

        /// <summary>Queues a JSON message (status) for the next exchange with Python.</summary>
        public void Send(string json)
        {
            using (var msg = new OutgoingMessage())
            {
                msg.SetRawBytes(Utf8.GetBytes(json));
                QueueMessageToSend(msg);
            }
        }
    }
}
