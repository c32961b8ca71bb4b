import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.config.TopicConfig;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * Makes the local stack's topics exist with the declared partition count and retention, in one JVM.
 * Idempotent: existing topics keep their data; their retention.ms is set again and their partition
 * count is raised when it is below the declared one (Kafka cannot lower it; that is reported).
 *
 * Usage: EnsureTopics BOOTSTRAP PARTITIONS RETENTION_MS TOPIC...
 * Built and run by devstack/services/kafka.sh.
 */
public final class EnsureTopics {
    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: EnsureTopics BOOTSTRAP PARTITIONS RETENTION_MS TOPIC...");
            System.exit(2);
        }
        String bootstrap = args[0];
        int partitions = Integer.parseInt(args[1]);
        String retentionMs = Long.toString(Long.parseLong(args[2]));
        List<String> topics = List.of(args).subList(3, args.length);

        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.CLIENT_ID_CONFIG, "devstack-ensure-topics");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");

        int problems = 0;
        try (Admin admin = Admin.create(props)) {
            List<NewTopic> wanted = new ArrayList<>();
            for (String topic : topics) {
                wanted.add(new NewTopic(topic, partitions, (short) 1)
                        .configs(Map.of(TopicConfig.RETENTION_MS_CONFIG, retentionMs)));
            }
            List<String> existing = new ArrayList<>();
            for (Map.Entry<String, KafkaFuture<Void>> e : admin.createTopics(wanted).values().entrySet()) {
                try {
                    e.getValue().get();
                    System.out.println("created topic " + e.getKey());
                } catch (ExecutionException ex) {
                    if (!(ex.getCause() instanceof TopicExistsException)) throw ex;
                    existing.add(e.getKey());
                }
            }
            if (existing.isEmpty()) return;

            Map<ConfigResource, java.util.Collection<AlterConfigOp>> retention = new HashMap<>();
            for (String topic : existing) {
                retention.put(new ConfigResource(ConfigResource.Type.TOPIC, topic), List.of(new AlterConfigOp(
                        new ConfigEntry(TopicConfig.RETENTION_MS_CONFIG, retentionMs), AlterConfigOp.OpType.SET)));
            }
            admin.incrementalAlterConfigs(retention).all().get();

            Map<String, NewPartitions> grow = new HashMap<>();
            for (TopicDescription d : admin.describeTopics(existing).allTopicNames().get().values()) {
                int have = d.partitions().size();
                if (have < partitions) {
                    grow.put(d.name(), NewPartitions.increaseTo(partitions));
                } else if (have > partitions) {
                    System.err.println("topic " + d.name() + " has " + have + " partitions, more than the declared "
                            + partitions + "; Kafka cannot shrink a topic (delete it or the state dir to reset)");
                    problems++;
                }
            }
            if (!grow.isEmpty()) {
                admin.createPartitions(grow).all().get();
                System.out.println("raised partition count to " + partitions + " for " + grow.keySet());
            }
            System.out.println("topics already present: " + existing);
        }
        System.exit(problems == 0 ? 0 : 1);
    }
}
